"""The pec_upgrade module as Ansible runs it: the preflight gates against the double's 4.2.8 schema, and the commit."""

from __future__ import annotations

import json

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient


def _install(tmp_path):
    root = tmp_path / "opt"
    (root / "webserver").mkdir(parents=True)
    config = tmp_path / "pec.config"
    config.write_text(json.dumps({"success": True, "version": "4.2.8"}))
    return {"pec_root": str(root), "pec_config_path": str(config)}


def _preflight(run_module, tmp_path, conn, **over):
    args = {"action": "preflight", "target_version": "4.5.2", "checks": ["migration_lock"], **_install(tmp_path)}
    return run_module("pec_upgrade", conn, **{**args, **over})


def test_a_held_migration_lock_refuses_the_upgrade_and_is_left_as_it_was(tmp_path, pg_server, pec_db, run_module):
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        client.query("CREATE TABLE tb_migracao_trava (id integer PRIMARY KEY, locked boolean, lockedby varchar(255))")
        client.query("INSERT INTO tb_migracao_trava VALUES (1, true, 'ubs-norte-1 (10.0.0.5)')")
    proc, out = _preflight(run_module, tmp_path, pec_db, _ansible_check_mode=True)
    assert out["decision"] == "upgrade" and not out.get("failed")
    assert [b["code"] for b in out["blockers"]] == ["migration_lock"]
    assert "migration lock is held" in out["blockers"][0]["msg"]
    assert any("tb_migracao_trava" in q for q in out["executed_queries"])
    assert pec_db["password"] not in proc.stdout + proc.stderr
    with PgClient(pg_server["bin_dir"], pec_db) as client:
        assert client.scalar("SELECT locked FROM tb_migracao_trava") == "t"


def test_without_the_lock_table_the_upgrade_goes_on_with_a_warning_not_a_pass(tmp_path, pec_db, run_module):
    _proc, out = _preflight(run_module, tmp_path, pec_db)
    assert out["blockers"] == []
    assert out["gates"]["migration_lock"]["status"] == "unverifiable"
    assert any("não verificável" in w for w in out["gate_warnings"])
    # shown to the operator as an Ansible warning
    assert "não verificável" in json.dumps(out["warnings"], ensure_ascii=False)


def test_the_installer_time_limit_comes_from_the_database_size(tmp_path, pec_db, run_module):
    _proc, out = _preflight(run_module, tmp_path, pec_db, checks=[], installer_timeout=600, installer_timeout_per_gb=7)
    assert out["installer_timeout"] == 607  # the small test database: one started GiB


def test_commit_without_an_upgrade_soaking_changes_nothing(tmp_path, pec_db, run_module):
    _proc, out = run_module("pec_upgrade", pec_db, action="commit", facts_dir=str(tmp_path / "facts"))
    assert out["action"] == "none" and out["changed"] is False
