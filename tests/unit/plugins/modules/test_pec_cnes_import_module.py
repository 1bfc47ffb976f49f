"""The pec_cnes_import module as Ansible runs it (arguments file in, JSON out) against the fake PEC 5.x
(module_utils/pec_web_fake.py): check mode sends nothing, a run imports and follows the import, a refusal fails with
a message and neither the password nor the login in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))

from pec_web_fake import MUNICIPIO_ID, PASSWORD, STATUS_PATH, STATUS_QUERY, USER, FakePec, running

MODULE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules", "pec_cnes_import.py")


def module(tmp_path, check=False, **args):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, MODULE, str(path)], capture_output=True, text=True, env=env, check=False)
    assert PASSWORD not in proc.stdout + proc.stderr and USER not in proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def args_for(fake, tmp_path, **extra):
    cnes = tmp_path / "cnes.xml"
    cnes.write_bytes(b"<ImportarXMLCNES/>")
    return {
        "base_url": fake.url,
        "municipio_id": MUNICIPIO_ID,
        "path": str(cnes),
        "user": USER,
        "password": PASSWORD,
        "timeout": 10,
        "status_query": STATUS_QUERY,
        "status_path": STATUS_PATH,
        "status_interval": 1,
        "status_timeout": 30,
        **extra,
    }


def test_check_mode_sends_nothing_to_the_pec(tmp_path):
    with running() as fake:
        out = module(tmp_path, check=True, **args_for(fake, tmp_path))
    assert out["changed"] is True and out["verified"] is False and out["message"].startswith("would import")
    assert fake.log == []


def test_a_run_imports_and_reports_the_pec_concluded(tmp_path):
    with running() as fake:
        out = module(tmp_path, **args_for(fake, tmp_path))
    assert out["changed"] is True and out["verified"] is True and out["status"] == "CONCLUIDO"
    assert len(fake.uploads) == 1


def test_without_a_status_query_the_run_says_the_end_is_not_verifiable(tmp_path):
    with running() as fake:
        out = module(tmp_path, **args_for(fake, tmp_path, status_query="", status_path=""))
    assert out["changed"] is True and out["verified"] is False and "não verificável" in out["message"]


def test_a_refused_login_fails_with_a_message(tmp_path):
    fake = FakePec()
    fake.login_refusal = "echo"
    with running(fake):
        out = module(tmp_path, **args_for(fake, tmp_path))
    assert out["failed"] is True and "refused the login" in out["msg"] and "Traceback" not in out["msg"]
    assert fake.uploads == []


def test_a_failing_status_fails_the_task_with_the_status(tmp_path):
    fake = FakePec()
    fake.progress = ["EM_ANDAMENTO", "ERRO"]
    with running(fake):
        out = module(tmp_path, **args_for(fake, tmp_path, status_failed=["ERRO"]))
    assert out["failed"] is True and out["status"] == "ERRO" and out["verified"] is False
    assert len(fake.uploads) == 1
