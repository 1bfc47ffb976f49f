"""sesdf.esus.html_pdf as a play runs it: on the control node whatever the task's host (a UBS that cannot even be
reached), written once, unchanged on a rerun, nothing in check mode, a clear message for a bad destination or mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
PAGE = '<!DOCTYPE html><html lang="pt-BR"><head><meta charset="utf-8"><title>Aviso</title></head><body>' + (
    "<h1>Aviso de migração — UBS 3</h1><p>Somente para consulta de prontuários.</p></body></html>"
)


def play(tmp_path, dest, *extra, mode="0640"):
    """Run the module from a play on an unreachable UBS host; returns (rc, output, the task's result)."""
    if not os.path.exists(os.path.join(REPO, "build", "collections", "ansible_collections", "sesdf", "esus")):
        pytest.fail("run `make collection` first (the unit target does)")
    (tmp_path / "aviso.html").write_text(PAGE, encoding="utf-8")
    inventory = {
        "all": {
            "hosts": {
                "ubs-3": {
                    "ansible_host": "ubs-3.invalid",
                    "ansible_connection": "ssh",
                    "ansible_python_interpreter": "/nonexistent/python3",
                }
            }
        }
    }
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(
        textwrap.dedent(f"""\
        - hosts: ubs-3
          gather_facts: false
          tasks:
            - sesdf.esus.html_pdf:
                content: "{{{{ lookup('ansible.builtin.file', '{tmp_path / "aviso.html"}') }}}}"
                dest: "{dest}"
                mode: "{mode}"
              register: pdf
            - ansible.builtin.debug:
                msg: "RESULT {{{{ pdf | to_json }}}}"
        """)
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="default",
    )
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run(
        [playbook, "-i", str(tmp_path / "inventory.json"), str(tmp_path / "play.yml"), *extra],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    out = proc.stdout + proc.stderr
    result = None
    for line in out.splitlines():
        if '"msg": "RESULT ' in line:
            result = json.loads(json.loads("{" + line.strip() + "}")["msg"][len("RESULT ") :])
    return proc.returncode, out, result


def test_the_pdf_is_made_on_the_control_node_once_and_check_mode_writes_nothing(tmp_path):
    dest = tmp_path / "aviso.pdf"
    rc, out, result = play(tmp_path, dest, "--check")
    assert rc == 0 and result["changed"] is True and not dest.exists(), out
    rc, out, result = play(tmp_path, dest)
    assert rc == 0 and result["changed"] is True, out
    assert result["pages"] == 1 and result["pdf_variant"] == "pdf/a-3u" and result["dest"] == str(dest)
    assert dest.read_bytes().startswith(b"%PDF-1.7") and oct(dest.stat().st_mode & 0o777) == "0o640"
    rc, out, result = play(tmp_path, dest)
    assert rc == 0 and result["changed"] is False, "same page, same file: a rerun changes nothing"


def test_a_missing_directory_or_a_bad_mode_fails_with_what_to_do_and_writes_nothing(tmp_path):
    rc, out, _result = play(tmp_path, tmp_path / "falta" / "aviso.pdf")
    assert rc != 0 and "does not exist: create it first (nothing was written)" in out and "Traceback" not in out
    rc, out, _result = play(tmp_path, tmp_path / "aviso.pdf", mode="rw-r-----")
    assert rc != 0 and "mode must be octal permissions such as 0640, got 'rw-r-----'" in out
    assert not (tmp_path / "aviso.pdf").exists() and not (tmp_path / "falta").exists()
