"""Host-side parsing: systemctl output, the public info endpoint, roles and version agreement."""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import (
    ROLE_CONSULTATION,
    ROLE_LOCAL,
    ROLE_NONE,
    classify_role,
    disk_space,
    parse_public_info,
    parse_systemctl_show,
    read_fact_file,
    versions_agree,
)


def test_systemctl_show():
    out = "LoadState=loaded\nActiveState=failed\nSubState=failed\nUnitFileState=enabled\n"
    assert parse_systemctl_show(out) == {
        "LoadState": "loaded",
        "ActiveState": "failed",
        "SubState": "failed",
        "UnitFileState": "enabled",
    }


def test_public_info():
    assert parse_public_info(b'{"versao": "4.5.2", "treinamento": false}') == "4.5.2"
    assert parse_public_info("<html>erro</html>") is None
    assert parse_public_info("[]") is None


def test_role():
    assert classify_role(False, None) == ROLE_NONE
    assert classify_role(True, None) == ROLE_LOCAL
    assert classify_role(True, {"migrated": True, "date": "2026-11-25"}) == ROLE_CONSULTATION
    assert classify_role(True, {"error": "cannot read"}) == ROLE_LOCAL


def test_versions_agree_ignores_unknown_sources():
    assert versions_agree({"config": "4.5.2", "database": "4.5.2", "http": None}) == (True, "4.5.2")
    assert versions_agree({"config": "4.5.2", "database": "4.2.8", "http": None}) == (False, None)
    assert versions_agree({"config": None, "database": None, "http": None}) == (False, None)


def test_disk_space_of_a_directory_not_yet_created(tmp_path):
    info = disk_space(str(tmp_path / "backups" / "esus"))
    assert info["exists"] is False
    assert info["measured_at"] == str(tmp_path)
    assert 0 < info["free_bytes"] <= info["total_bytes"]


def test_fact_file(tmp_path):
    assert read_fact_file(str(tmp_path / "none.fact")) is None
    bad = tmp_path / "bad.fact"
    bad.write_text("{")
    assert "cannot read" in read_fact_file(str(bad))["error"]
