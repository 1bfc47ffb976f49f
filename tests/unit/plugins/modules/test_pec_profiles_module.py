# ruff: noqa: S608 (SQL built from the test's own constants)
"""The pec_profiles module as Ansible runs it: arguments file in, JSON out, against the double's schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

_HERE = os.path.dirname(__file__)
BREAK_GLASS = "00000000272"  # the synthetic UBS of the pec_db fixture (conftest.py)
VIEW = "Visualização de prontuário"

MODULE = os.path.join(_HERE, "..", "..", "..", "..", "plugins", "modules", "pec_profiles.py")


def _module(tmp_path, pg_server, conn, check=False, diff=False, **over):
    args = {
        "db_host": conn["host"],
        "db_port": conn["port"],
        "db_name": conn["name"],
        "db_user": conn["user"],
        "db_password": conn["password"],
        "pg_bin_dir": pg_server["bin_dir"],
        "break_glass_login": BREAK_GLASS,
        "snapshot_dir": str(tmp_path / "snap"),
        "_ansible_check_mode": check,
        "_ansible_diff": diff,
    }
    args.update(over)
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, MODULE, str(path)], capture_output=True, text=True, env=env, check=False)
    return proc, json.loads(proc.stdout)


def test_module_check_diff_then_apply_then_idempotent(tmp_path, pg_server, pec_db):
    proc, out = _module(tmp_path, pg_server, pec_db, check=True, diff=True)
    assert out["changed"] is True and "diff" in out
    assert pec_db["password"] not in proc.stdout + proc.stderr, "the database password must never be output"
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        assert client.scalar(f"SELECT count(*) FROM tb_perfil WHERE no_perfil = '{VIEW}'") == "0"
    out = _module(tmp_path, pg_server, pec_db)[1]
    assert out["changed"] is True and out["snapshot"] and "diff" not in out
    assert out["executed_queries"]
    out = _module(tmp_path, pg_server, pec_db)[1]
    assert out["changed"] is False


def test_module_database_down_fails_with_a_message(tmp_path, pg_server, pec_db):
    out = _module(tmp_path, pg_server, pec_db, db_port=1)[1]
    assert out["failed"] is True
    assert "not accepting connections" in out["msg"] and "Traceback" not in out["msg"]
