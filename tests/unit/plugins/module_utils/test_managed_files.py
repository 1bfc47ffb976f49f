"""managed_files: many directories, files, attributes and lines in one call, with loop-shaped results."""

from __future__ import annotations

import grp
import os
import pwd
import stat

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import _fsutil
from ansible_collections.sesdf.esus.plugins.module_utils.managed_files import apply_entries, set_lines

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name
ROOT = os.getuid() == 0


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def snapshot(root):
    """Every path under root with its type, mode and content: what check mode must leave as it was."""
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(base, name)
            st = os.lstat(p)
            out[p] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None,
            )
    return out


def entries_for(tmp_path):
    d = str(tmp_path / "conf.d")
    return [
        {"path": d, "state": "directory", "mode": "0750", "item": {"cis": "1.5.3"}},
        {"path": d + "/60-cis.conf", "state": "file", "content": "[Coredump]\nStorage=none\n", "mode": "0644"},
        {
            "path": str(tmp_path / "login.defs"),
            "state": "lines",
            "lines": [{"regexp": r"^\s*#?\s*PASS_MAX_DAYS\s", "line": "PASS_MAX_DAYS\t365"}],
        },
        {
            "path": str(tmp_path / "login.defs"),
            "state": "lines",
            "lines": [{"regexp": r"^\s*#?\s*UMASK\s", "line": "UMASK\t027"}],
        },
        {"path": str(tmp_path / "shadow"), "state": "attributes", "mode": "0640"},
        {"path": str(tmp_path / "opasswd"), "state": "attributes", "mode": "0600"},
    ]


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "login.defs").write_text("# comment\n#PASS_MAX_DAYS\t99999\nUMASK\t022\nOTHER x\n")
    (tmp_path / "shadow").write_text("root:*:1::::::\n")
    os.chmod(tmp_path / "shadow", 0o644)
    return tmp_path


def test_first_run_applies_every_entry_with_loop_shaped_results(tree):
    results = apply_entries(entries_for(tree))
    assert [(r["changed"], r["failed"], r["skipped"]) for r in results] == [
        (True, False, False),
        (True, False, False),
        (True, False, False),
        (True, False, False),
        (True, False, False),
        (False, False, True),
    ]
    assert results[0]["item"] == {"cis": "1.5.3"} and results[1]["item"] == str(tree / "conf.d" / "60-cis.conf")
    assert mode_of(tree / "conf.d") == 0o750 and mode_of(tree / "conf.d" / "60-cis.conf") == 0o644
    assert (tree / "conf.d" / "60-cis.conf").read_text() == "[Coredump]\nStorage=none\n"
    # the commented default line is the one replaced; the other lines stay in place
    assert (tree / "login.defs").read_text() == "# comment\nPASS_MAX_DAYS\t365\nUMASK\t027\nOTHER x\n"
    assert mode_of(tree / "shadow") == 0o640
    assert "does not exist" in results[5]["msg"] and not (tree / "opasswd").exists()
    assert results[4]["diff"]["before"].endswith(" 0644\n") and results[4]["diff"]["after"].endswith(" 0640\n")


def test_second_run_changes_nothing(tree):
    apply_entries(entries_for(tree))
    before = snapshot(tree)
    results = apply_entries(entries_for(tree))
    assert not any(r["changed"] for r in results)
    assert "diff" not in results[2]
    assert snapshot(tree) == before


def test_check_mode_writes_nothing_and_sees_what_earlier_entries_would_create(tree):
    before = snapshot(tree)
    results = apply_entries(entries_for(tree), check_mode=True)
    assert snapshot(tree) == before
    # the file in the directory the run would create is a change, not an error
    assert [r["changed"] for r in results] == [True, True, True, True, True, False]
    assert not any(r["failed"] for r in results)
    # the second login.defs entry sees the first one's planned text: its diff holds both settings
    assert "PASS_MAX_DAYS\t365" in results[3]["diff"]["before"] and "UMASK\t027" in results[3]["diff"]["after"]
    # and check mode predicts exactly what the real run does
    real = apply_entries(entries_for(tree))
    assert [r["changed"] for r in real] == [r["changed"] for r in results]


def test_a_failing_entry_is_reported_and_the_next_ones_still_run(tree):
    entries = [
        {"path": str(tree / "nope" / "x.conf"), "state": "file", "content": "x\n"},
        {"path": str(tree / "absent.conf"), "state": "lines", "lines": [{"regexp": "^a", "line": "a=1"}]},
        {"path": str(tree / "shadow"), "state": "attributes", "owner": "sesdf-no-such-user"},
        {"path": str(tree / "opasswd"), "state": "attributes", "missing": "fail"},
        {"path": str(tree / "shadow"), "state": "attributes", "mode": "0600"},
    ]
    results = apply_entries(entries)
    assert [r["failed"] for r in results] == [True, True, True, True, False]
    assert "create it first" in results[0]["msg"]
    assert "install the package" in results[1]["msg"]
    assert "no user 'sesdf-no-such-user'" in results[2]["msg"]
    assert "does not exist" in results[3]["msg"]
    assert mode_of(tree / "shadow") == 0o600 and not (tree / "nope").exists()


def test_a_link_is_not_followed(tree):
    os.symlink(tree / "shadow", tree / "link")
    [result] = apply_entries([{"path": str(tree / "link"), "state": "attributes", "mode": "0600"}])
    assert result["failed"] and "symbolic link" in result["msg"]
    assert mode_of(tree / "shadow") == 0o644


def test_a_failed_write_keeps_the_old_file_whole(tree, monkeypatch):
    target = tree / "login.defs"
    old = target.read_text()

    def full_disk(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_fsutil.os, "replace", full_disk)
    [result] = apply_entries([{"path": str(target), "state": "file", "content": "novo\n"}])
    assert result["failed"] and "free space" in result["msg"]
    assert target.read_text() == old
    assert sorted(p.name for p in tree.iterdir()) == ["login.defs", "shadow"]


def test_bad_mode_and_non_directory_are_clear(tree):
    results = apply_entries(
        [
            {"path": str(tree / "shadow"), "state": "attributes", "mode": "u=rw"},
            {"path": str(tree / "shadow"), "state": "directory"},
            {"path": str(tree / "conf.d"), "state": "file", "content": "x"},
        ]
    )
    assert "not an octal mode" in results[0]["msg"]
    assert "is not a directory" in results[1]["msg"]
    assert results[2]["failed"] is False  # a new file in an existing directory
    assert [r["failed"] for r in results] == [True, True, False]


@pytest.mark.skipif(not ROOT, reason="changing a file's owner needs root")
def test_owner_and_group_are_set_before_the_file_appears(tree):
    path = tree / "pwquality.conf"
    results = apply_entries(
        [
            {
                "path": str(path),
                "state": "file",
                "content": "minlen = 14\n",
                "owner": "nobody",
                "group": "nogroup",
                "mode": "0640",
            },
            {"path": str(tree / "shadow"), "state": "attributes", "owner": "nobody", "group": "nogroup"},
        ]
    )
    assert all(r["changed"] for r in results)
    st = os.stat(path)
    assert (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, mode_of(path)) == (
        "nobody",
        "nogroup",
        0o640,
    )
    assert results[1]["diff"]["after"] == "nobody:nogroup 0644\n"
    # a rewrite keeps the owner it finds when none is given
    apply_entries([{"path": str(path), "state": "file", "content": "minlen = 15\n"}])
    assert pwd.getpwuid(os.stat(path).st_uid).pw_name == "nobody" and mode_of(path) == 0o640


def test_owner_names_resolve(tree):
    [result] = apply_entries([{"path": str(tree / "shadow"), "state": "attributes", "owner": ME, "group": MY_GROUP}])
    assert not result["failed"] and not result["changed"]


@pytest.mark.parametrize(
    ("text", "pairs", "expected"),
    [
        ("a=1\n", [("^a=", "a=2")], "a=2\n"),
        ("a=1\nb\na=3\n", [("^a=", "a=2")], "a=1\nb\na=2\n"),  # the last match, as lineinfile
        ("b\n", [("^a=", "a=2")], "b\na=2\n"),  # appended
        ("b\na=2\n", [("^x", "a=2")], "b\na=2\n"),  # the line already there: no duplicate
        ("", [("^a=", "a=2")], "a=2\n"),
        ("b", [("^a=", "a=2")], "b\na=2\n"),  # no trailing newline before
    ],
)
def test_set_lines_follows_lineinfile(text, pairs, expected):
    assert set_lines(text, pairs) == expected


def test_missing_parents_get_the_entry_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        [result] = apply_entries(
            [{"path": str(tmp_path / "lib" / "pkg" / "utils"), "state": "directory", "mode": "0755"}]
        )
    finally:
        os.umask(old)
    assert result["changed"]
    for p in (tmp_path / "lib", tmp_path / "lib" / "pkg", tmp_path / "lib" / "pkg" / "utils"):
        assert mode_of(p) == 0o755, p


def test_lines_keep_bytes_that_are_not_utf8(tmp_path):
    conf = tmp_path / "faillock.conf"
    conf.write_bytes(b"# r\xe9sum\xe9 latin-1\n# deny = 3\n")
    [result] = apply_entries(
        [{"path": str(conf), "state": "lines", "lines": [{"regexp": r"^\s*#?\s*deny\s*=", "line": "deny = 5"}]}]
    )
    assert result["changed"] and not result["failed"]
    assert conf.read_bytes() == b"# r\xe9sum\xe9 latin-1\ndeny = 5\n"
