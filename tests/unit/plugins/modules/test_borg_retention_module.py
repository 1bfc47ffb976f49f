"""The borg_retention module as Ansible runs it (arguments file in, JSON out), on a real borg repository the "UBS"
writes through its append-only access: the finding is a warning of the task, the passphrase is never in what it
returns, a repository it cannot open fails with a message and no traceback, check mode writes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
from borg_helpers import PASS, PREFIX, Ubs

MODULE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules", "borg_retention.py")

pytestmark = pytest.mark.skipif(shutil.which("borg") is None, reason="borg not installed on this machine")


def module(tmp_path, ubs, check=False, **args):
    path = tmp_path / "args.json"
    arguments = {
        "repository": ubs.repo,
        "prefix": PREFIX,
        "passphrase": PASS,
        "keep_daily": 1,
        "keep_weekly": 0,
        "keep_monthly": 0,
        "base_dir": str(tmp_path / "backup-host-borg"),
        **args,
        "_ansible_check_mode": check,
    }
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": arguments}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, MODULE, str(path)], capture_output=True, text=True, env=env, check=False)
    assert PASS not in proc.stdout + proc.stderr, "the passphrase never comes back"
    return json.loads(proc.stdout)


def test_a_deletion_by_the_ubs_is_a_warning_of_the_task_and_nothing_is_pruned(tmp_path):
    ubs = Ubs(tmp_path)
    ubs.init()
    for day in (1, 2, 3):
        ubs.send(day)
    first = module(tmp_path, ubs)
    assert first["status"] == "ok" and first["changed"] is True and len(first["pruned"]) == 2
    assert module(tmp_path, ubs)["changed"] is False, "a second run changes nothing"
    ubs.send(4)
    ubs.delete(f"{PREFIX}diario-20260103T023000Z")
    recorded = open(first["state_path"]).read()
    would = module(tmp_path, ubs, check=True)
    assert would["critical"] is True and open(first["state_path"]).read() == recorded, "check mode writes nothing"
    found = module(tmp_path, ubs)
    assert would["changed"] is found["changed"] is True, "check mode says what the run changes (its record)"
    assert found["critical"] is True and found["pruned"] == [] and found["compacted"] is False
    warned = json.dumps(found["warnings"])
    assert "CRITICAL" in warned and f"{PREFIX}diario-20260103T023000Z deleted" in warned
    assert found["procedure"][3]["command"].startswith("for f in ")
    (txn,) = found["report"]["transactions"]
    lost = {"name": f"{PREFIX}diario-20260103T023000Z", "how": "deleted", "transaction": txn["id"]}
    assert found["report"]["lost"] == [lost]


def test_a_repository_it_cannot_open_fails_with_what_to_do(tmp_path):
    ubs = Ubs(tmp_path)
    ubs.init()
    ubs.send(1)
    out = module(tmp_path, ubs, passphrase="Not-The-Passphrase-1")
    assert out["failed"] is True and "does not open" in out["msg"] and "Traceback" not in out["msg"]
    assert "Not-The-Passphrase-1" not in json.dumps(out)
    out = module(tmp_path, ubs, prefix=" ")
    assert out["failed"] is True and "would prune every archive" in out["msg"]
    absent = module(tmp_path, ubs, repository=str(tmp_path / "none"))
    assert absent["status"] == "absent" and absent["changed"] is False
