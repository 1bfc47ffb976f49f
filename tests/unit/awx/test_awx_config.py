"""AWX configuration as code (awx/config.yml, applied by playbooks/awx_config.yml): every job template runs a
playbook of playbooks/, credentials are names only, and every schedule's rrule parses with python-dateutil (as
AWX does) and fires when intended on a synthetic calendar, in America/Sao_Paulo local time."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import yaml
from awx_data import CONFIG, REPO
from dateutil.rrule import rrulestr

TZ = ZoneInfo("America/Sao_Paulo")
UTC = dt.UTC
SECRET_WORDS = ("password", "senha", "ssh_key", "token", "secret", "vault_pass", "private_key")


def _schedule(name: str) -> dict:
    return next(s for s in CONFIG["awx_schedules"] if s["name"] == name)


def _rule(name: str):
    # AWX stores "DTSTART;TZID=...:... RRULE:..." on one line; dateutil reads the same lines
    return rrulestr(_schedule(name)["rrule"].replace(" RRULE:", "\nRRULE:"))


def _fires(name: str, year: int) -> list[dt.datetime]:
    start = dt.datetime(year, 1, 1, tzinfo=TZ)
    return _rule(name).between(start, start.replace(year=year + 1), inc=True)


def _keys(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)


def test_job_templates_run_existing_playbooks():
    names = [jt["name"] for jt in CONFIG["awx_job_templates"]]
    assert len(names) == len(set(names))
    for jt in CONFIG["awx_job_templates"]:
        assert (REPO / jt["playbook"]).is_file(), jt["playbook"]


# Playbooks AWX does not run as they are: migrate.yml migrates every apt UBS and upgrade.yml upgrades every UBS it
# is given, whatever CTINF's date and IT's window; in AWX those flows are the regime's (site.yml, the switch on), run
# by the approval workflows.
NOT_IN_AWX = {"playbooks/awx_config.yml", "playbooks/migrate.yml", "playbooks/upgrade.yml"}


def test_every_playbook_but_the_unguarded_flows_and_the_awx_one_has_a_job_template():
    playbooks = {f"playbooks/{p.name}" for p in (REPO / "playbooks").glob("*.yml")} - NOT_IN_AWX
    assert {jt["playbook"] for jt in CONFIG["awx_job_templates"]} == playbooks


def test_credentials_are_names_and_no_secret_is_written_in():
    types = {t["name"] for t in CONFIG["awx_credential_types"]} | {"Machine"}
    for cred in CONFIG["awx_credentials"].values():
        assert set(cred) <= {"name", "type", "per_region", "custodian"}, cred
        assert cred["name"] and cred["custodian"] and cred["type"] in types
    # the credential types declare their inputs and inject them: no default value, every input injected, every
    # name an injector renders is one input or the file AWX writes (tower.filename); outside the types no key names
    # a secret
    for ctype in CONFIG["awx_credential_types"]:
        fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
        assert not [f for f in fields.values() if "default" in f]
        templates = [*ctype["injectors"].get("file", {}).values(), *ctype["injectors"]["extra_vars"].values()]
        used = {name for value in templates for name in re.findall(r"\{\{ ([\w.]+) \}\}", value)}
        assert used - {"tower.filename"} == set(fields), ctype["name"]
    rest = {k: v for k, v in CONFIG.items() if k != "awx_credential_types"}
    assert not [k for k in _keys(rest) if any(w in k.lower() for w in SECRET_WORDS)]
    assert not [k for k in _keys(CONFIG) if k.startswith("vault")]


def test_regions_have_unique_names_and_a_source_in_the_repository():
    regions = CONFIG["awx_regions"]
    assert len({r["name"] for r in regions}) == len({r["label"] for r in regions}) == len(regions) == 7
    assert len({r["team"] for r in regions}) == 7
    for region in regions:
        assert (REPO / region["source_path"]).is_file(), region["source_path"]


@pytest.mark.parametrize("schedule", CONFIG["awx_schedules"], ids=lambda s: s["name"])
def test_schedule_parses_in_sao_paulo_and_names_a_job_template(schedule):
    assert schedule["rrule"].startswith("DTSTART;TZID=America/Sao_Paulo:")
    first = _rule(schedule["name"])[0]
    assert first.tzinfo is not None and first.utcoffset() == dt.timedelta(hours=-3)
    if "workflow" in schedule:
        assert schedule["workflow"] in {wf["key"] for wf in CONFIG["awx_workflows"]}
    else:
        assert schedule["job_template"] in {jt["key"] for jt in CONFIG["awx_job_templates"]}


def test_the_regime_runs_every_night_inside_the_maintenance_window():
    fires = _fires("Regime da região (diário)", 2027)
    assert len(fires) == 365 and {f.time() for f in fires} == {dt.time(21, 0)}
    key = _schedule("Regime da região (diário)")["workflow"]
    workflow = next(w for w in CONFIG["awx_workflows"] if w["key"] == key)
    assert "regime" in {n["kind"] for n in workflow["nodes"]}
    # the regime's default maintenance window (roles/regime: sesdf_esus_janela_manutencao) holds the run's start,
    # so an upgrade due in IT's window is applied by this schedule
    defaults = yaml.safe_load((REPO / "roles" / "regime" / "defaults" / "main.yml").read_text())
    window = defaults["regime_maintenance_window"].split("default('")[1].split("')")[0]
    start, end = (dt.time.fromisoformat(t) for t in window.split("-"))
    assert start > end, "the window crosses midnight"
    assert all(f.time() >= start or f.time() < end for f in fires)


def test_daily_backup_check_fires_every_day_at_seven_local():
    fires = _fires("Checagem diária de backup", 2027)
    assert len(fires) == 365
    assert {f.date() for f in fires} == {dt.date(2027, 1, 1) + dt.timedelta(days=n) for n in range(365)}
    # no daylight saving time in Brazil: always 07:00 local = 10:00 UTC
    assert {f.astimezone(UTC).time() for f in fires} == {dt.time(10, 0)}
    assert {f.time() for f in fires} == {dt.time(7, 0)}


def test_weekly_cnes_on_monday_morning_and_lotes_on_friday_afternoon():
    cnes = _fires("CNES semanal (staging e auditoria de perfis)", 2027)
    lotes = _fires("Lotes semanais para o NCAIS", 2027)
    assert len(cnes) == 52 and {f.weekday() for f in cnes} == {0} and {f.time() for f in cnes} == {dt.time(7, 30)}
    assert len(lotes) == 53 and {f.weekday() for f in lotes} == {4} and {f.time() for f in lotes} == {dt.time(16)}
    assert _schedule("CNES semanal (staging e auditoria de perfis)")["job_tags"] == "cnes_import,profile_audit"
    assert _schedule("Lotes semanais para o NCAIS")["job_tags"] == "lotes_export"


@pytest.mark.parametrize("year", [2026, 2027, 2028])
def test_monthly_report_once_a_month_on_a_weekday_a_week_before_the_10th(year):
    fires = _fires("Relatório mensal", year)
    assert [f.month for f in fires] == list(range(1, 13))
    for f in fires:
        assert f.weekday() < 5, f
        assert 2 <= f.day <= 4, f  # at least 5 days left before the CDS deadline (the 10th)
        assert f.time() == dt.time(8, 0)


def test_upgrades_only_in_the_weekend_maintenance_window():
    fires = _fires("Atualização do PEC (janela de manutenção)", 2027)
    assert len(fires) == 52
    assert {(f.weekday(), f.time()) for f in fires} == {(5, dt.time(20, 0))}
    assert _schedule("Atualização do PEC (janela de manutenção)").get("enabled") is False
