# ruff: noqa: S608 (SQL built from the test's own constants)
"""The pec_profiles module as Ansible runs it: arguments file in, JSON out, against the double's schema."""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

BREAK_GLASS = "00000000272"  # the synthetic UBS of the pec_db fixture (conftest.py)
VIEW = "Visualização de prontuário"


def _module(run_module, tmp_path, conn, check=False, diff=False, **over):
    args = {"break_glass_login": BREAK_GLASS, "snapshot_dir": str(tmp_path / "snap"), "schema_trust": "double", **over}
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


def test_module_on_a_real_pec_permission_schema_refuses_or_skips_and_writes_nothing(
    tmp_path, pg_server, pec_db, run_module
):
    """A real PEC names the papel's type no_tipo_ator_papel (pec-facts, third review): the profile change is refused
    before any write; with unsupported=skip the task succeeds with supported=false, for a flow to record the manual
    step (and a check to report it not verifiable)."""
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        client.query("ALTER TABLE tb_ator_papel RENAME COLUMN tp_ator_papel TO no_tipo_ator_papel")
        before = client.scalar("SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM rl_ator_papel_perfil r")
    out = _module(run_module, tmp_path, pec_db)[1]
    assert out["failed"] is True and "column tb_ator_papel.tp_ator_papel" in out["msg"]
    for check in (True, False):
        out = _module(run_module, tmp_path, pec_db, check=check, unsupported="skip")[1]
        assert not out.get("failed") and out["changed"] is False and out["supported"] is False
        assert out["compat"]["capability"] == "change_profiles" and out["compat"]["manual"].startswith("Administração")
        assert "professionals_view_only" not in out
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        after = client.scalar("SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM rl_ator_papel_perfil r")
        assert client.scalar(f"SELECT count(*) FROM tb_perfil WHERE no_perfil = '{VIEW}'") == "0"
    assert after == before and not (tmp_path / "snap").exists()
