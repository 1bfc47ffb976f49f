# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's own paths on a server are defined once per side: ``plugins/module_utils/_paths.py`` for the
modules and programs, the ``sesdf_esus_*_dir`` variables of ``roles/pec_facts`` for the roles. Both sides hold the
same values, a module documents the default it really uses, and no other file spells the directories."""

from __future__ import annotations

import ast
import glob
import os
import re

import pytest
import yaml
from module_docs import MODULES, REPO, argument_spec, merged_doc

from ansible_collections.sesdf.esus.plugins.module_utils import _paths

# role variable: the module_utils constant with the same value
ROOTS = {
    "sesdf_esus_facts_dir": _paths.FACTS_DIR,
    "sesdf_esus_state_dir": _paths.STATE_DIR,
    "sesdf_esus_config_dir": _paths.CONFIG_DIR,
    "sesdf_esus_backup_dir": _paths.BACKUP_DIR,
}
LIB_DIR = "/usr/local/lib/sesdf-esus"
LITERALS = re.compile("|".join(re.escape(root) for root in [*ROOTS.values(), LIB_DIR]) + r"(?![\w-])")


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _pec_facts():
    return _load(os.path.join(REPO, "roles", "pec_facts", "defaults", "main.yml"))


def _render(value, variables):
    """A default like ``{{ sesdf_esus_state_dir }}/lotes`` with the shared roots put in."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(variables[m.group(1)]), value)


@pytest.mark.parametrize("name", MODULES)
def test_documented_defaults_are_the_defaults_the_module_uses(name, monkeypatch):
    spec = argument_spec(name, monkeypatch)
    if spec is None:
        pytest.skip(f"{name} is run by an action plugin")
    documented = merged_doc(name)["options"]
    assert sorted(documented) == sorted(spec), name
    for option, entry in spec.items():
        assert documented[option].get("default") == entry.get("default"), f"{name}: option {option}"


def test_a_module_documents_the_paths_constants_as_its_defaults(monkeypatch):
    constants = {value for key, value in vars(_paths).items() if key.isupper()}
    used = set()
    for name in MODULES:
        spec = argument_spec(name, monkeypatch) or {}
        for option, entry in spec.items():
            default = entry.get("default")
            if isinstance(default, str) and LITERALS.match(default):
                assert default in constants, f"{name}: option {option} defaults to {default}, not from _paths"
                assert merged_doc(name)["options"][option]["default"] == default
                used.add(default)
    assert {_paths.FACTS_DIR, _paths.BACKUP_DIR, _paths.LOTES_LEDGER, _paths.APP_STOP_MARKER} <= used


def test_the_roles_roots_are_the_modules_roots():
    facts = _pec_facts()
    for variable, value in ROOTS.items():
        assert facts[variable] == value, variable
    assert facts["sesdf_esus_lib_dir"] == LIB_DIR
    assert _render(facts["sesdf_esus_lotes_inbox"], facts) == _paths.LOTES_INBOX
    spec = _load(os.path.join(REPO, "roles", "pec_facts", "meta", "argument_specs.yml"))
    options = spec["argument_specs"]["main"]["options"]
    for variable in [*ROOTS, "sesdf_esus_lib_dir", "sesdf_esus_lotes_inbox"]:
        assert options[variable]["default"] == facts[variable], variable


def _string_literals(path):
    """(line, text) of the string constants of a Python file, but its docstrings and DOCUMENTATION/EXAMPLES/RETURN."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) in ("DOCUMENTATION", "EXAMPLES", "RETURN") for t in node.targets
        ):
            skip.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def test_no_plugin_spells_the_collection_directories_but_paths():
    found = []
    for path in glob.glob(os.path.join(REPO, "plugins", "**", "*.py"), recursive=True):
        if path.endswith(os.path.join("module_utils", "_paths.py")):
            continue
        for line, text in _string_literals(path):
            if LITERALS.match(text):
                found.append(f"{os.path.relpath(path, REPO)}:{line}: {text}")
    assert not found, "use plugins/module_utils/_paths.py:\n" + "\n".join(found)


def _role_files(role):
    for pattern in ("defaults/*.yml", "vars/*.yml", "tasks/**/*.yml", "handlers/*.yml", "templates/**/*", "meta/*.yml"):
        yield from glob.glob(os.path.join(REPO, "roles", role, pattern), recursive=True)


ROLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "roles", "*")) if os.path.isdir(p))


@pytest.mark.parametrize("role", [r for r in ROLES if r != "pec_facts"])
def test_a_role_spells_no_collection_directory(role):
    found = []
    for path in _role_files(role):
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if LITERALS.search(line) and not line.lstrip().startswith("#"):
                    found.append(f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}")
    assert not found, "default from the sesdf_esus_*_dir variables of roles/pec_facts:\n" + "\n".join(found)


@pytest.mark.parametrize("role", [r for r in ROLES if r != "pec_facts"])
def test_a_role_using_a_shared_variable_depends_on_pec_facts(role):
    shared = re.compile(r"\b(" + "|".join(map(re.escape, _pec_facts())) + r")\b")
    users = []
    for path in _role_files(role):
        if os.path.isfile(path) and not path.endswith(os.path.join("meta", "main.yml")):
            with open(path, encoding="utf-8") as handle:
                users += [os.path.relpath(path, REPO)] if shared.search(handle.read()) else []
    if not users:
        pytest.skip(f"{role} uses no variable of roles/pec_facts")
    dependencies = _load(os.path.join(REPO, "roles", role, "meta", "main.yml")).get("dependencies") or []
    names = [d.get("role") if isinstance(d, dict) else d for d in dependencies]
    assert "sesdf.esus.pec_facts" in names, f"{role} uses roles/pec_facts's variables ({users}) without depending on it"
