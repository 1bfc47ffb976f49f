# ruff: noqa: S608 (SQL built from the test's own constants)
"""The pec_profiles module as Ansible runs it: arguments file in, JSON out, against the double's schema."""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

BREAK_GLASS = "00000000272"  # the synthetic UBS of the pec_db fixture (conftest.py)
VIEW = "Visualização de prontuário"


def _module(run_module, tmp_path, conn, check=False, diff=False, **over):
    args = {"break_glass_login": BREAK_GLASS, "snapshot_dir": str(tmp_path / "snap"), **over}
    return run_module("pec_profiles", conn, check, diff, **args)


def test_module_check_diff_then_apply_then_idempotent(tmp_path, pg_server, pec_db, run_module):
    proc, out = _module(run_module, tmp_path, pec_db, check=True, diff=True)
    assert out["changed"] is True and "diff" in out
    assert pec_db["password"] not in proc.stdout + proc.stderr, "the database password must never be output"
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        assert client.scalar(f"SELECT count(*) FROM tb_perfil WHERE no_perfil = '{VIEW}'") == "0"
    out = _module(run_module, tmp_path, pec_db)[1]
    assert out["changed"] is True and out["snapshot"] and "diff" not in out
    assert out["executed_queries"]
    out = _module(run_module, tmp_path, pec_db)[1]
    assert out["changed"] is False


def test_module_database_down_fails_with_a_message(tmp_path, pg_server, pec_db, run_module):
    out = _module(run_module, tmp_path, pec_db, db_port=1)[1]
    assert out["failed"] is True
    assert "not accepting connections" in out["msg"] and "Traceback" not in out["msg"]
