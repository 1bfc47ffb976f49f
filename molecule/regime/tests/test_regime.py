"""regime: the readiness verdicts from the shaped links, the flow each UBS got from site.yml, the jobs of the
inapt UBS, the consultation checks that wrote nothing, and bad input in a check run (one UBS fails, the others
go on)."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess

import pytest
from labhost import not_view_only, pec_app_password, read_json, sh

APTA, INAPTA, MIGRADA = "sesdf-regime-apta", "sesdf-regime-inapta", "sesdf-regime-migrada"
INAPTA55 = "sesdf-regime-inapta55"
FACT = "/etc/ansible/facts.d/sesdf_esus_readiness.fact"
# the collection's jobs on a server: enabled timers, and any cron file (none: the jobs run on timers)
JOBS = (
    "systemctl list-unit-files --no-legend --plain --state=enabled 'sesdf-esus-*.timer' | cut -d' ' -f1; "
    "ls /etc/cron.d | grep '^sesdf-esus-' || true"
)
INAPT_JOBS = [f"sesdf-esus-{name}.timer" for name in ("backup", "cnes", "lotes", "manutencao")]
FILES = (
    "{ find /etc/cron.d /etc/sesdf-esus /etc/ansible/facts.d -type f; "
    "ls -d /etc/systemd/system/sesdf-esus-* 2>/dev/null; } | sort | xargs md5sum"
)
REPO = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
REPORTS = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "relatorios")

testinfra_hosts = [APTA]


def site_check(*extra):
    """playbooks/site.yml in check mode over the scenario's inventory: (rc, output)."""
    cmd = [
        "ansible-playbook",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        "--check",
        os.path.join(REPO, "playbooks", "site.yml"),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def bad_input_run():
    """One check run: the inapt UBS without its off-host destination, the apt one with its date reached but no
    migration settings."""
    before = {host: sh(host, FILES) for host in (APTA, INAPTA, MIGRADA)}
    extra = json.dumps({"backup_schedule_offhost_dest": "", "sesdf_esus_data_migracao": "2026-01-01"})
    rc, out = site_check("-e", extra)
    after = {host: sh(host, FILES) for host in (APTA, INAPTA, MIGRADA)}
    return rc, out, before, after


@pytest.mark.nt("NT-aptidao-1")
def test_readiness_verdicts_come_from_the_shaped_links():
    fast, slow = read_json(APTA, FACT), read_json(INAPTA, FACT)
    assert fast["concern"] == "readiness" and fast["data"]["verdict"] == "apta"
    assert fast["data"]["measured_mbps"] >= 16 and fast["data"]["agrees"] is True
    assert slow["data"]["verdict"] == "inapta" and slow["data"]["measured_mbps"] < 16
    assert any("medido" in reason and "abaixo de 16" in reason for reason in slow["data"]["reasons"])
    assert slow["data"]["group"] == "ubs_inaptas" and slow["data"]["agrees"] is True
    assert sh(INAPTA, f"stat -c '%a %U' {FACT}") == "600 root"


def test_the_region_files_on_the_control_node_hold_each_verdict():
    with open(os.path.join(REPORTS, "prontidao-regiao_norte.json"), encoding="utf-8") as handle:
        norte = json.load(handle)
    with open(os.path.join(REPORTS, "prontidao-regiao_sul.json"), encoding="utf-8") as handle:
        sul = json.load(handle)
    assert sorted(norte["ubs"]) == [APTA, MIGRADA] and list(sul["ubs"]) == [INAPTA]
    assert sul["ubs"][INAPTA]["verdict"] == "inapta"


def test_the_report_reads_what_the_roles_and_jobs_recorded_as_the_contract_says():
    """The converge's report (site.yml ends with report.yml): every record the inapt UBS's roles and jobs wrote, as
    root, is read as valid (none untrusted, of a wrong type, truncated or in the future), the hardening cell says its
    mode, and no control id is in the table or the pendencies (only in the security detail)."""
    (page,) = glob.glob(os.path.join(REPORTS, "relatorio-regiao_sul-*.json"))
    with open(page, encoding="utf-8") as handle:
        row = {r["host"]: r for r in json.load(handle)["rows"]}[INAPTA]
    present = {name: s["status"] for name, s in row["states"].items() if s["present"]}
    assert "hardening" in present and set(present.values()) <= {"ok", "desatualizado"}, row["states"]
    assert row["backup"]["record"] in ("ok", "desatualizado", "sem_registro"), row["backup"]
    assert [p for p in row["pendencias"] if p["code"].startswith("estado_") or p["code"] == "leitura_falhou"] == []
    assert row["states"]["hardening"]["cell"].startswith("modo enforce: "), row["states"]["hardening"]
    with open(page[: -len(".json")] + ".html", encoding="utf-8") as handle:
        html = handle.read()
    table_and_pendencies = html.split("<h2>Segurança por item da Nota Técnica</h2>")[0]
    assert not re.search(r"\b(cis_\d|whitelist_|firewall_|perm_|cron_allow|login_banner)", table_and_pendencies)


def test_the_waiting_apt_ubs_was_not_touched():
    assert sh(APTA, JOBS) == ""
    assert sh(APTA, "ls /etc/ansible/facts.d") == "sesdf_esus_readiness.fact"
    assert sh(APTA, "test -e /etc/sesdf-esus && echo yes || echo no") == "no"


@pytest.mark.nt("NT-geral-2")
def test_the_inapt_ubs_has_its_daily_and_weekly_jobs_without_secrets():
    assert sh(INAPTA, JOBS).split() == INAPT_JOBS
    config = read_json(INAPTA, "/etc/sesdf-esus/backup.json")
    assert config["offhost_enabled"] is True and config["offhost_dest"] == "/srv/copia-ti/ubs"
    units = sh(INAPTA, "cat /etc/systemd/system/sesdf-esus-*.service /etc/systemd/system/sesdf-esus-*.timer")
    assert units.count("--config /etc/sesdf-esus/") == 4 and units.count("Persistent=true") == 4
    assert pec_app_password(INAPTA) not in units + sh(INAPTA, "cat /etc/sesdf-esus/*.json")


@pytest.mark.nt("NT-inapta-6")
def test_the_cnes_job_stages_the_week_file_for_this_ubs():
    sh(INAPTA, "cp /root/cnes.xml /srv/ncais/cnes/XmlParaESUS31_530010.xml")
    run = sh(INAPTA, "systemctl start sesdf-esus-cnes.service; echo rc=$?")
    assert run.endswith("rc=0"), run + sh(INAPTA, "journalctl --no-pager -u sesdf-esus-cnes.service | tail")
    assert read_json(INAPTA, "/var/lib/sesdf-esus/cnes/semanal-status.json")["result"] == "ok"


def test_an_inapt_ubs_on_5_5_gets_the_same_local_regime_and_its_jobs_work_there():
    """IT's current target is a 5.5.x: the same readiness verdict, the same jobs, and the daily backup verified on
    the 5.5 schema, without Ansible."""
    verdict = read_json(INAPTA55, FACT)["data"]
    assert verdict["verdict"] == "inapta" and verdict["group"] == "ubs_inaptas" and verdict["agrees"] is True
    assert sh(INAPTA55, JOBS).split() == INAPT_JOBS
    assert json.loads(sh(INAPTA55, "cat /etc/pec.config"))["version"] == "5.5.28"
    run = sh(INAPTA55, "/usr/local/sbin/sesdf-esus-backup --config /etc/sesdf-esus/backup.json >/dev/null; echo rc=$?")
    assert run.endswith("rc=0"), run
    status = read_json(INAPTA55, "/etc/ansible/facts.d/sesdf_esus_backup.fact")
    assert status["last_result"] == "ok" and status["verified"] is True and status["offhost"]["state"] == "ok"
    assert sh(INAPTA55, f"stat -c '%a %U' {status['path']}") == "600 root"


@pytest.mark.nt("NT-inapta-5")
def test_the_inapt_ubs_was_not_upgraded_before_its_window():
    assert "4.2.8" in sh(INAPTA, "cat /etc/pec.config")


def test_consultation_checks_found_the_profiles_and_wrote_nothing():
    assert not_view_only(MIGRADA), "the lab's migrated UBS keeps its full profiles: the checks must see them"
    assert sh(MIGRADA, JOBS) == ""
    assert sh(MIGRADA, "test -e /var/lib/sesdf-esus/profile-snapshots && echo yes || echo no") == "no"


def test_bad_input_fails_only_its_ubs_naming_the_variable(bad_input_run):
    rc, out = bad_input_run[:2]
    assert rc != 0
    assert re.search(rf"{INAPTA} \(local\):.*backup_schedule_offhost_dest", out)
    # the migrated UBS of the same run still got its consultation checks and nothing failed there
    assert re.search(rf"{MIGRADA}: consulta", out)
    # the double's 4.2.8 has no CNES profile-reset key: that check cannot observe, so it says so (never ok)
    assert "importação do CNES sem redefinir perfis: não verificável - sem passo manual registrado" in out
    assert re.search(rf"{MIGRADA}\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0\s+skipped=\d+\s+rescued=0", out)


def test_a_check_run_changes_nothing(bad_input_run):
    before, after = bad_input_run[2:]
    assert before == after


def test_an_apt_ubs_whose_date_came_gets_the_migration_flow_and_fails_alone(bad_input_run):
    out = bad_input_run[1]
    assert f"{APTA}: migracao" in out
    assert re.search(rf"{APTA} \(migracao\):.*migrate_share_dir", out)


def test_the_weekly_hardening_is_not_repeated_until_due_nor_after_a_mode_change():
    """The converge recorded the hardening result (enforce): the next night's run only says when it ran; the
    inventory switched to another hardening_mode makes it due at once."""
    limit = ("--limit", f"{INAPTA},localhost")
    rc, out = site_check(*limit)
    assert rc == 0, out[-3000:]
    not_due = r"\(enforce\) h\S+ [\d.]+ h, refeito a cada 156 h \(regime_hardening_every_hours"
    assert re.search(not_due, out), out[-3000:]
    assert "sesdf.esus.hardening : Record the result in the server's state" not in out
    rc, out = site_check(*limit, "-e", "hardening_mode=audit")
    assert rc == 0, out[-3000:]
    assert "refeito a cada 156 h" not in out
    assert "sesdf.esus.hardening : Record the result in the server's state" in out


@pytest.mark.nt("NT-geral-2")
def test_pec_info_sees_each_job_as_systemd_does():
    """The regime's own run took the first backup; the weekly lotes job waits for Monday; a CNES job that found no
    file is left failed (exit 1) and pec_info says so, with when each job runs next."""
    from ansible_module import run_module

    sh(INAPTA, "mv /srv/ncais/cnes /srv/ncais/cnes.fora; systemctl start sesdf-esus-cnes.service || true")
    try:
        jobs = run_module(INAPTA, "sesdf.esus.pec_info")["pec"]["jobs"]
    finally:
        sh(INAPTA, "mv /srv/ncais/cnes.fora /srv/ncais/cnes; systemctl reset-failed sesdf-esus-cnes.service")
    assert jobs["verifiable"] is True
    assert sorted(jobs["jobs"]) == [f"sesdf-esus-{n}" for n in ("backup", "cnes", "lotes", "manutencao")]
    backup, cnes, lotes = (jobs["jobs"][f"sesdf-esus-{n}"] for n in ("backup", "cnes", "lotes"))
    assert backup["state"] == "ok" and backup["exit_status"] == 0 and backup["last_run"]
    assert lotes["state"] == "instalado" and lotes["last_run"] is None and lotes["next_run"].startswith("Mon ")
    assert cnes["state"] == "falhou" and cnes["exit_status"] == 1 and cnes["failed"] is True
