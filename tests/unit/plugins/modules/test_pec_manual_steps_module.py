"""The pec_manual_steps module as Ansible runs it (arguments file in, JSON out): record, confirm, rerun unchanged,
refuse an unknown id with a message and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

MODULE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules", "pec_manual_steps.py")


def module(tmp_path, check=False, **args):
    path = tmp_path / "args.json"
    path.write_text(
        json.dumps(
            {"ANSIBLE_MODULE_ARGS": {"facts_dir": str(tmp_path / "facts"), **args, "_ansible_check_mode": check}}
        )
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, MODULE, str(path)], capture_output=True, text=True, env=env, check=False)
    return json.loads(proc.stdout)


def test_record_confirm_then_a_rerun_changes_nothing(tmp_path):
    first = module(tmp_path, refused=["transmission_off"])
    assert first["changed"] is True and [s["id"] for s in first["pending"]] == ["NT-apta-transmissao"]
    confirmed = {"NT-apta-transmissao": "Maria Souza"}
    second = module(tmp_path, refused=["transmission_off"], confirmed=confirmed)
    assert second["changed"] is True and second["pending"] == [] and second["confirmed_now"] == ["NT-apta-transmissao"]
    third = module(tmp_path, refused=["transmission_off"], confirmed=confirmed)
    assert third["changed"] is False and third["steps"] == second["steps"]
    assert third["by_capability"]["transmission_off"]["verificacao"].startswith("confirmado manualmente por Maria")


def test_an_unknown_id_fails_with_a_message_and_a_step_not_asked_is_a_warning(tmp_path):
    out = module(tmp_path, confirmed={"NT-apta-transmisao": "Maria Souza"})
    assert out["failed"] is True and "unknown manual step NT-apta-transmisao" in out["msg"]
    assert "Traceback" not in out["msg"]
    out = module(tmp_path, confirmed={"NT-apta-perfis": "Maria Souza"})
    assert out["changed"] is False and "no such manual step was asked" in json.dumps(out["warnings"])


def test_a_capability_without_a_manual_step_is_refused_by_the_argument_spec(tmp_path):
    out = module(tmp_path, refused=["create_lotes"])
    assert out["failed"] is True and "refused" in out["msg"]
