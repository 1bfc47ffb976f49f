"""The ids of the technical note's determinations (docs/nt-ids.yml) stay true to the code, the tests and the docs."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest
import yaml

from ansible_collections.sesdf.esus.plugins.module_utils import manual_steps, report_hardening, report_model

ROOT = pathlib.Path(__file__).resolve().parents[2]
IDS_FILE = ROOT / "docs" / "nt-ids.yml"
TABLE = ROOT / "docs" / "nt-ids.md"
ID_FORM = re.compile(r"^NT-(geral|perfis|gsap|gpma|cds|aptidao|apta|ntinf|inapta)-[1-9][0-9]*$")
# An NT-... token in code, tests and docs (not inside a longer word such as CONTENT-TYPE).
TOKEN = re.compile(r"(?<![A-Za-z0-9_-])NT-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
# The tail of a task name that carries ids: "Daily job | NT-inapta-4" or "... | NT-ntinf-1, NT-inapta-5".
TASK_IDS = re.compile(r"\|\s*(NT-[A-Za-z0-9-]+(?:\s*,\s*NT-[A-Za-z0-9-]+)*)\s*$")
# Misspelt or made-up ids the manual-step tests give on purpose, to see them refused.
DELIBERATELY_UNKNOWN = {"NT-x", "NT-y", "NT-apta-transmisao", "NT-apta-tramsissao"}
PATH_KEYS = ("roles", "modules", "playbooks", "docs")


def load():
    return yaml.safe_load(IDS_FILE.read_text(encoding="utf-8"))["ids"]


ENTRIES = load()
BY_ID = {e["id"]: e for e in ENTRIES}


def task_names():
    """{id: [(file, task name)]} of every task name of the roles that ends in ``| <ids>``."""
    found = {}
    for path in sorted((ROOT / "roles").glob("*/tasks/**/*.yml")):
        for item in _tasks(yaml.safe_load(path.read_text(encoding="utf-8")) or []):
            match = TASK_IDS.search(str(item.get("name", "")))
            for nt in match.group(1).split(",") if match else ():
                found.setdefault(nt.strip(), []).append((path.relative_to(ROOT).as_posix(), item["name"]))
    return found


def _tasks(items):
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            yield item
            for key in ("block", "rescue", "always"):
                yield from _tasks(item.get(key))


def nt_markers(path):
    """{test function name: [ids]} of the @pytest.mark.nt(...) decorators in a test file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    marks = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "pytest.mark.nt":
                    marks.setdefault(node.name, []).extend(a.value for a in deco.args if isinstance(a, ast.Constant))
    return marks


def used_tokens(*dirs):
    """{token: [file]} of every NT-... token in the Python and YAML files under the directories."""
    found = {}
    me = pathlib.Path(__file__).resolve()
    for top in dirs:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".py", ".yml", ".yaml", ".j2") or path.resolve() == me or not path.is_file():
                continue
            for token in TOKEN.findall(path.read_text(encoding="utf-8", errors="replace")):
                found.setdefault(token, []).append(path.relative_to(ROOT).as_posix())
    return found


# ------------------------------------------------------------------------------------------------- the file
def test_every_entry_has_a_unique_well_formed_id_and_the_notes_words():
    ids = [e["id"] for e in ENTRIES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert [i for i in ids if not ID_FORM.match(i)] == []
    assert [e["id"] for e in ENTRIES if not str(e.get("nota", "")).strip()] == []


def test_ids_of_one_reader_are_numbered_from_1_in_the_order_of_the_note():
    numbers = {}
    for entry in ENTRIES:
        prefix, number = entry["id"].rsplit("-", 1)
        numbers.setdefault(prefix, []).append(int(number))
    assert {p: n for p, n in numbers.items() if n != list(range(1, len(n) + 1))} == {}


def test_an_implemented_id_names_where_it_lives_and_one_not_implemented_says_why():
    for entry in ENTRIES:
        if entry.get("implemented") is False:
            assert str(entry.get("reason", "")).strip(), f"{entry['id']}: not implemented needs a reason"
        else:
            assert entry.get("implemented") is True, entry["id"]
            assert entry.get("roles") and entry.get("tests") and entry.get("docs"), entry["id"]


@pytest.mark.parametrize("key", PATH_KEYS)
def test_every_path_the_file_names_exists(key):
    missing = [(e["id"], p) for e in ENTRIES for p in e.get(key, ()) if not (ROOT / p).exists()]
    assert missing == []


def test_every_test_the_file_names_exists_and_carries_the_nt_marker_of_its_id():
    problems = []
    for entry in ENTRIES:
        for ref in entry.get("tests", ()):
            path, _sep, func = ref.partition("::")
            if not func or not (ROOT / path).is_file():
                problems.append((entry["id"], ref, "no such file"))
                continue
            if not re.search(rf"^def {re.escape(func)}\(", (ROOT / path).read_text(encoding="utf-8"), re.M):
                problems.append((entry["id"], ref, "no such test"))
            elif entry["id"] not in nt_markers(ROOT / path).get(func, []):
                problems.append((entry["id"], ref, f'no @pytest.mark.nt("{entry["id"]}")'))
    assert problems == []


# -------------------------------------------------------------------------------- where the reader meets them
def test_every_implemented_id_ends_a_task_name_and_no_task_names_an_unknown_or_unimplemented_one():
    names = task_names()
    implemented = {e["id"] for e in ENTRIES if e.get("implemented") is True}
    assert sorted(implemented - set(names)) == []
    assert {i: where for i, where in names.items() if i not in implemented} == {}


def test_a_task_that_carries_an_id_is_in_a_role_the_file_names_for_it():
    wrong = [
        (nt, path)
        for nt, where in task_names().items()
        for path, _name in where
        if not any(path.startswith(role + "/") for role in BY_ID.get(nt, {}).get("roles", ()))
    ]
    assert wrong == []


def test_every_nt_marker_in_the_tests_names_a_known_id():
    unknown = []
    for top in ("tests", "molecule"):
        for path in sorted((ROOT / top).rglob("test_*.py")):
            for func, ids in nt_markers(path).items():
                unknown += [(path.relative_to(ROOT).as_posix(), func, i) for i in ids if i not in BY_ID]
    assert unknown == []


def test_every_nt_token_in_roles_plugins_tests_and_molecule_is_an_id_or_a_manual_step_of_one():
    known = set(BY_ID) | {step for e in ENTRIES for step in e.get("manual_steps", ())} | DELIBERATELY_UNKNOWN
    unknown = {t: files for t, files in used_tokens("roles", "plugins", "tests", "molecule").items() if t not in known}
    assert unknown == {}


def test_the_manual_steps_are_those_of_the_collection_each_under_the_id_the_report_gives_it():
    listed = {step: e["id"] for e in ENTRIES for step in e.get("manual_steps", ())}
    assert set(listed) == set(manual_steps.STEPS)
    by_report = {step: report_model.CAPABILITY_NT[spec["capability"]] for step, spec in manual_steps.STEPS.items()}
    assert listed == by_report


def test_every_id_the_report_gives_a_pendency_is_an_implemented_one():
    given = set(report_model.CONCERN_NT.values()) | set(report_model.CAPABILITY_NT.values())
    given |= {report_model.BACKUP_NT, report_model.CDS_NT}
    given |= {report_model._version_nt(s) for s in report_model.STATUS_LABELS}
    given |= set(report_hardening.ITEMS) | {nt for nt, *_rest in report_hardening.GROUPS.values()}
    assert {i for i in given if BY_ID.get(i, {}).get("implemented") is not True} == set()


def test_the_docs_table_lists_every_id_once_with_the_notes_words():
    table = TABLE.read_text(encoding="utf-8")
    rows = {}
    for line in table.splitlines():
        match = re.match(r"^\|\s*`?(NT-[A-Za-z0-9-]+)`?\s*\|", line)
        if match:
            rows.setdefault(match.group(1), []).append(line)
    assert sorted(rows) == sorted(BY_ID)
    assert {i: len(lines) for i, lines in rows.items() if len(lines) != 1} == {}
    for nt, (line,) in rows.items():
        first_words = " ".join(BY_ID[nt]["nota"].split()[:4])
        assert first_words in line, (nt, first_words)
