"""Host-side parsing: systemctl output, the public info endpoint, roles and version agreement."""

from __future__ import annotations

from fake_runner import FakeRunner

from ansible_collections.sesdf.esus.plugins.module_utils import pec_host
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


# ------------------------------------------------------------------------------------ the server jobs' units
SHOW = """Id=sesdf-esus-backup.timer
UnitFileState=enabled
ActiveState=active
Result=success
ExecMainStatus=0
ExecMainExitTimestamp=
LastTriggerUSec=Tue 2026-12-08 02:31:40 UTC
NextElapseUSecRealtime=Wed 2026-12-09 02:30:00 UTC

Id=sesdf-esus-backup.service
UnitFileState=static
ActiveState=inactive
Result=success
ExecMainStatus=0
ExecMainExitTimestamp=Tue 2026-12-08 02:34:02 UTC
LastTriggerUSec=
NextElapseUSecRealtime=

Id=sesdf-esus-lotes.timer
UnitFileState=enabled
ActiveState=active
Result=success
ExecMainStatus=0
ExecMainExitTimestamp=
LastTriggerUSec=n/a
NextElapseUSecRealtime=Mon 2026-12-14 06:30:00 UTC

Id=sesdf-esus-lotes.service
UnitFileState=static
ActiveState=inactive
Result=success
ExecMainStatus=0
ExecMainExitTimestamp=
LastTriggerUSec=
NextElapseUSecRealtime=

Id=sesdf-esus-cnes.timer
UnitFileState=enabled
ActiveState=active
Result=success
ExecMainStatus=0
ExecMainExitTimestamp=
LastTriggerUSec=Mon 2026-12-07 05:31:00 UTC
NextElapseUSecRealtime=Mon 2026-12-14 05:30:00 UTC

Id=sesdf-esus-cnes.service
UnitFileState=static
ActiveState=failed
Result=exit-code
ExecMainStatus=1
ExecMainExitTimestamp=Mon 2026-12-07 05:31:02 UTC
LastTriggerUSec=
NextElapseUSecRealtime=

"""
LISTED = "".join(f"sesdf-esus-{name}.timer enabled enabled\n" for name in ("backup", "cnes", "lotes"))


def test_jobs_read_from_their_units_ok_not_run_yet_and_failed():
    runner = FakeRunner({("systemctl", "list-unit-files"): (0, LISTED, ""), ("systemctl", "show"): (0, SHOW, "")})
    out = pec_host.job_states(runner)
    assert out["verifiable"] is True and sorted(out["jobs"]) == [
        "sesdf-esus-backup",
        "sesdf-esus-cnes",
        "sesdf-esus-lotes",
    ]
    backup, lotes, cnes = (out["jobs"][f"sesdf-esus-{n}"] for n in ("backup", "lotes", "cnes"))
    assert (
        backup["state"] == "ok" and backup["last_run"] == "Tue 2026-12-08 02:34:02 UTC" and backup["exit_status"] == 0
    )
    assert lotes["state"] == "instalado" and lotes["last_run"] is None and lotes["exit_status"] is None
    assert lotes["next_run"] == "Mon 2026-12-14 06:30:00 UTC"
    assert (
        cnes["state"] == "falhou" and cnes["failed"] and cnes["exit_status"] == 1 and cnes["exit_meaning"] == "falhou"
    )
    assert runner.calls[0][0][-1] == "sesdf-esus-*.timer"
    argv = runner.calls[1][0]  # by name: a pattern would miss the inactive services
    assert argv[:2] == ["systemctl", "show"] and argv[-2:] == ["sesdf-esus-lotes.timer", "sesdf-esus-lotes.service"]


def test_a_disabled_timer_is_said_and_systemctl_that_cannot_answer_is_not_verifiable():
    disabled = SHOW.replace(
        "UnitFileState=enabled\nActiveState=active\nResult=success\nExecMainStatus=0\n"
        "ExecMainExitTimestamp=\nLastTriggerUSec=Tue",
        "UnitFileState=disabled\nActiveState=inactive\n"
        "Result=success\nExecMainStatus=0\nExecMainExitTimestamp=\nLastTriggerUSec=Tue",
    )
    answers = {("systemctl", "list-unit-files"): (0, LISTED, ""), ("systemctl", "show"): (0, disabled, "")}
    assert pec_host.job_states(FakeRunner(answers))["jobs"]["sesdf-esus-backup"]["state"] == "desativado"
    none = pec_host.job_states(FakeRunner({("systemctl", "list-unit-files"): (1, "", "")}))
    assert none == {"verifiable": True, "error": None, "jobs": {}}, "no job on this server"
    down = pec_host.job_states(FakeRunner({"systemctl": (1, "", "System has not been booted with systemd")}))
    assert down == {"verifiable": False, "error": "System has not been booted with systemd", "jobs": {}}
    missing = pec_host.job_states(FakeRunner({}))
    assert missing["verifiable"] is False and "systemctl" in missing["error"] and missing["jobs"] == {}
