"""pec_info.gather: what the module reports, with the HTTP and systemd probes faked."""

from __future__ import annotations

import json

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_info import gather


def params(tmp_path, **over):
    p = {k: v.get("default") for k, v in pec_argument_spec().items()}
    p.update(
        pec_root=str(tmp_path / "opt"),
        pec_config_path=str(tmp_path / "pec.config"),
        backup_dir=str(tmp_path / "backups"),
        version_key="VERSAOBANCODADOS",
        info_path="/api/public/info",
        start_page_path="/esus/",
        ready_statuses=[200, 302, 401],
        https_url="https://127.0.0.1:443",
        http_timeout=1,
        facts_dir=str(tmp_path / "facts"),
        backup_check_cache=str(tmp_path / "check.json"),
        app_stop_marker=str(tmp_path / "app-stopped.json"),
    )
    p.update(over)
    return p


def units(active="active"):
    return lambda name: {
        "name": name,
        "exists": True,
        "active_state": active,
        "sub_state": "running",
        "enabled": "enabled",
    }


def test_host_without_pec_is_reported_missing_without_touching_http(tmp_path):
    def http(_url, _timeout):
        raise AssertionError("no HTTP probe on a host without PEC")

    pec, executed = gather(params(tmp_path), http_get=http, unit_state=units("inactive"))
    assert pec["installed"] is False and pec["role"] == "none" and executed == []
    assert [p["code"] for p in pec["problems"]] == ["missing"]


def test_versions_that_disagree_and_a_stopped_service_are_problems(tmp_path):
    (tmp_path / "pec.config").write_text(json.dumps({"version": "4.2.8", "jreDirectory": "/opt/e-SUS/jre"}))
    facts = tmp_path / "facts"
    facts.mkdir()
    (facts / "sesdf_esus_backup.fact").write_text(json.dumps({"last_success": "2026-03-12T02:00:00Z"}))
    (facts / "sesdf_esus_migration.fact").write_text(json.dumps({"migrated": True}))
    pec, _executed = gather(
        params(
            tmp_path,
            pg_bin_dir=str(tmp_path / "nobin"),
            db_password="x",
            db_user="u",
            db_host="127.0.0.1",
            db_port=1,
            db_name="esus",
        ),
        http_get=lambda _url, _timeout: (200, b'{"versao": "4.5.2"}'),
        unit_state=units("failed"),
    )
    assert pec["installed"] and pec["role"] == "consultation"
    assert pec["version"]["config"] == "4.2.8" and pec["version"]["http"] == "4.5.2"
    assert pec["version"]["agree"] is False and pec["paths"]["jre"] == "/opt/e-SUS/jre"
    assert isinstance(pec["backup_status"]["age_hours"], float)
    codes = [p["code"] for p in pec["problems"]]
    assert "version_mismatch" in codes and codes.count("services") == 2 and "database" in codes


def test_http_failure_is_a_problem_that_names_the_url(tmp_path):
    (tmp_path / "pec.config").write_text(json.dumps({"version": "4.2.8"}))

    def down(url, _timeout):
        raise OSError("connection refused")

    pec, _executed = gather(params(tmp_path, pg_bin_dir=str(tmp_path / "nobin")), http_get=down, unit_state=units())
    http = [p for p in pec["problems"] if p["code"] == "http"]
    assert pec["http"]["reachable"] is False and "http://127.0.0.1:8080/api/public/info" in http[0]["msg"]
    assert "http://127.0.0.1:8080/esus/" in http[0]["msg"], "the start page was asked too"


def _answers(routes):
    """An HTTP probe that answers like a PEC: {path: (status, body)}; anything else 404."""

    def get(url, _timeout):
        path = "/" + url.split("/", 3)[3]
        return routes.get(path, (404, b'{"erro": "N\xc3\xa3o encontrado"}'))

    return get


def test_a_real_5_4_pec_that_answers_401_on_its_start_page_and_has_no_info_endpoint_is_up(tmp_path):
    """A real 5.4.37 answers 401 to an anonymous GET /esus/: that is a running PEC, not 'PEC não responde'."""
    (tmp_path / "pec.config").write_text(json.dumps({"version": "4.5.2"}))
    pec, _executed = gather(
        params(tmp_path, pg_bin_dir=str(tmp_path / "nobin")),
        http_get=_answers({"/esus/": (401, b"")}),
        unit_state=units(),
    )
    assert "http" not in [p["code"] for p in pec["problems"]]
    assert pec["http"]["answers"] is True and pec["http"]["how"] == "start_page"
    assert pec["http"]["info_status"] == 404 and pec["http"]["page_status"] == 401
    assert pec["version"]["http"] is None, "a start page tells no version"


def test_a_start_page_that_answers_500_or_404_is_not_a_running_pec(tmp_path):
    (tmp_path / "pec.config").write_text(json.dumps({"version": "4.5.2"}))
    for status in (500, 404, 503):
        pec, _executed = gather(
            params(tmp_path, pg_bin_dir=str(tmp_path / "nobin")),
            http_get=_answers({"/esus/": (status, b"")}),
            unit_state=units(),
        )
        (problem,) = [p for p in pec["problems"] if p["code"] == "http"]
        assert pec["http"]["answers"] is False and f"/esus/ answered {status}" in problem["msg"]


def test_an_https_install_of_the_certmgr_is_asked_on_its_https_url(tmp_path):
    (tmp_path / "pec.config").write_text(json.dumps({"version": "5.5.28"}))
    ssl = tmp_path / "opt" / "webserver" / "certmgr" / "config"
    ssl.mkdir(parents=True)
    (ssl / "ssl.properties").write_text("# settings of the PEC's certificate manager\n")
    asked = []

    def get(url, _timeout):
        asked.append(url)
        return (200, b'{"versao": "5.5.28"}')

    pec, _executed = gather(params(tmp_path, pg_bin_dir=str(tmp_path / "nobin")), http_get=get, unit_state=units())
    assert asked == ["https://127.0.0.1:443/api/public/info"]
    assert pec["http"]["how"] == "info_endpoint" and pec["version"]["http"] == "5.5.28"


def test_a_damaged_backup_is_reported_unverified_and_a_stop_by_a_killed_run_is_explained(tmp_path):
    (tmp_path / "pec.config").write_text(json.dumps({"version": "4.2.8"}))
    archive = tmp_path / "esus_diario_20260301T020000Z.pgdump.zst"
    archive.write_bytes(b"archive as published")
    manifest = {"sha256": "0" * 64, "size_bytes": 20}
    (tmp_path / (archive.name + ".manifest.json")).write_text(json.dumps(manifest))
    facts = tmp_path / "facts"
    facts.mkdir()
    status = {"last_success": "2026-03-01T02:00:00Z", "verified": True, "path": str(archive), "sha256": "0" * 64}
    (facts / "sesdf_esus_backup.fact").write_text(json.dumps(status))
    (tmp_path / "app-stopped.json").write_text(json.dumps({"stopped_by": "sesdf.esus.pec_backup", "reason": "backup"}))
    archive.write_bytes(b"archive as published, then appended to")
    pec, _executed = gather(
        params(tmp_path, pg_bin_dir=str(tmp_path / "nobin")),
        http_get=lambda _url, _timeout: (200, b'{"versao": "4.2.8"}'),
        unit_state=units("inactive"),
    )
    backup = pec["backup_status"]
    assert backup["verified"] is False and backup["check"] == "mismatch" and backup["checked_at"]
    app_problem = next(p["msg"] for p in pec["problems"] if p["code"] == "services")
    assert "stopped by sesdf.esus.pec_backup (backup" in app_problem
    assert pec["services"]["app"]["stopped_by_collection"]["reason"] == "backup"


def test_the_state_every_role_recorded_is_reported_with_its_age_even_without_a_pec(tmp_path):
    import datetime

    from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import utcnow
    from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import write_state

    facts = tmp_path / "facts"
    write_state(str(facts), "hardening", {"summary": {"fail": 2}}, now=utcnow() - datetime.timedelta(hours=10))
    (facts / "sesdf_esus_lotes.fact").write_text("{half a file")
    pec, _executed = gather(
        params(tmp_path, state_cadence_hours={"hardening": 5}), http_get=None, unit_state=units("inactive")
    )
    state = pec["state"]
    assert state["hardening"]["data"] == {"summary": {"fail": 2}} and state["hardening"]["stale"] is True
    assert "unreadable" in state["lotes"]["error"] and state["readiness"]["present"] is False
    assert pec["production"] is None, "production is read only when asked"


def test_a_backup_status_with_a_date_written_as_a_number_is_no_crash_and_never_verified(tmp_path):
    """Before, pec_info ended with a traceback here: every UBS of report.yml failing meant no page at all."""
    facts = tmp_path / "facts"
    facts.mkdir()
    status = {"last_success": 1764468000, "path": str(tmp_path / "nada.pgdump.zst"), "verified": True}
    (facts / "sesdf_esus_backup.fact").write_text(json.dumps(status))
    pec, _executed = gather(params(tmp_path), http_get=None, unit_state=units("inactive"))
    backup = pec["backup_status"]
    assert backup["verified"] is False and backup["age_hours"] is None
    assert backup["last_success"] == 1764468000, "kept as it is, for the report to name the field"
    assert pec["state"]["backup"]["error_kind"] == "date" and pec["state"]["backup"]["error_field"] == "last_success"
