"""upgrade: what an NTINF technician sees after an upgrade run, a refusal, a rollback and a stopped region.

The converge upgraded sesdf-upgrade-ok and sesdf-upgrade-strict (4.2.8 -> 4.5.2; the latter on the strict
double: no /api/public/info, 401 on /esus/, no start line); the copy aside of 4.2.8 stays while the upgrade soaks,
and a later run with the soak over (commit.yml) removes it. The failure cases drive their own playbook runs:
regiao_oeste (a 4.5.5 server: refused) and regiao_sul (ok, s2 with the broken 4.5.2 build, s3; s2 and s3 strict).
State is read with `podman exec` (fast); the prepare step recorded a data snapshot in /root/upgrade-snapshot.txt.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from labhost import patient_data_now, sh, sql

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
testinfra_hosts = ["podman://sesdf-upgrade-ok"]  # every test below runs once and names the hosts it reads
VERSION_SQL = "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'"


def versions(name):
    """The version each source gives; ``http`` is None where the version endpoint does not exist (the strict double,
    like a real 4.x)."""
    config = json.loads(sh(name, "cat /etc/pec.config"))["version"]
    database = sql(name, VERSION_SQL)
    info = sh(name, "curl -sS --retry 5 --retry-connrefused http://127.0.0.1:8080/api/public/info || true")
    http = json.loads(info).get("versao") if info.startswith("{") else None
    return {"config": config, "database": database, "http": http}


def status_of(name, path):
    return sh(name, f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:8080{path}")


def app_active(name):
    return sh(name, "systemctl is-active e-SUS-PEC.service || true") == "active"


def snapshot(name):
    return patient_data_now(name, "/root/upgrade-snapshot.txt")


def backups(name):
    return sh(name, "ls -1 /var/backups/esus 2>/dev/null | grep -v '^upgrade$' || true").split()


def run_upgrade(group, playbook="converge.yml", *extra):
    cmd = ["ansible-playbook", "-i", INVENTORY, os.path.join(SCENARIO_DIR, playbook), "-e", f"upgrade_hosts={group}"]
    cmd += [arg for value in extra for arg in ("-e", value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def upgrade_state(name):
    return json.loads(sh(name, "cat /etc/ansible/facts.d/sesdf_esus_upgrade.fact"))["data"]


ASIDE = "/var/backups/esus/upgrade/pec-4.2.8"


@pytest.mark.nt("NT-ntinf-1")
def test_upgraded_ubs_reports_452_in_config_database_and_http():
    assert versions("sesdf-upgrade-ok") == {"config": "4.5.2", "database": "4.5.2", "http": "4.5.2"}
    assert app_active("sesdf-upgrade-ok")


def test_an_upgrade_to_a_pec_that_answers_401_and_prints_no_start_line_completes_and_is_not_rolled_back():
    """A real 5.4 answers 401 to an anonymous GET /esus/, has no start line to wait for, and (4.x) no version
    endpoint: the strict double does the same, and the upgrade is ready by the start page and the database."""
    strict = "sesdf-upgrade-strict"
    assert status_of(strict, "/api/public/info") == "404"
    assert status_of(strict, "/esus/") == "401"
    assert sh(strict, "grep -c iniciado /opt/e-SUS/webserver/logs/pec.log || true") == "0", "no start line printed"
    assert versions(strict) == {"config": "4.5.2", "database": "4.5.2", "http": None}
    assert app_active(strict)
    state = json.loads(sh(strict, "cat /etc/ansible/facts.d/sesdf_esus_upgrade.fact"))
    assert state["data"]["last"]["result"] == "at_target" and state["data"]["last"]["version"] == "4.5.2", state
    before, now = snapshot(strict)
    assert now == before


def test_a_452_ubs_upgraded_to_5_5_28_answers_as_5_5_with_its_data_equal():
    """IT's target is a 5.5.x: the 4.5.2 strict UBS went through the 5.5.28 installer (the 5.5 schema, the bundled
    JRE, /api/public/info) and every patient, encounter, profile and transmission row is still there."""
    host = "sesdf-upgrade-55"
    assert versions(host) == {"config": "5.5.28", "database": "5.5.28", "http": "5.5.28"}
    assert app_active(host)
    assert status_of(host, "/esus/") == "401"
    state = upgrade_state(host)["last"]
    assert state["result"] == "at_target" and state["version"] == "5.5.28", state
    assert json.loads(sh(host, "cat /etc/pec.config"))["jreDirectory"] == "/opt/e-SUS/jre/current"
    wanted = ["tb_adm_municipal.co_localidade", "tb_ator_papel.no_tipo_ator_papel", "tb_prof.no_civil_profissional"]
    columns = sql(
        host,
        "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE column_name IN"
        " ('no_tipo_ator_papel', 'tp_ator_papel', 'no_civil_profissional', 'no_profissional', 'co_localidade')"
        " AND table_name IN ('tb_ator_papel', 'tb_prof', 'tb_adm_municipal') ORDER BY 1",
    ).split()
    assert columns == wanted
    before, now = snapshot(host)
    assert len(before) == 2 and now == before
    counts = dict(line.split() for line in sh(host, "cat /root/upgrade-55-counts.txt").splitlines())
    after = {t: sql(host, f"SELECT count(*) FROM {t}") for t in counts}  # noqa: S608 (table names from the prepare)
    # the automatic lotes of the day may have tied pending records to a new lote: items only grow, records never drop
    kept = (
        "tb_usuario",
        "tb_prof",
        "tb_ator_papel",
        "tb_lotacao",
        "rl_ator_papel_perfil",
        "tb_perfil",
        "tb_dado_transp",
    )
    for t in kept:
        assert after[t] == counts[t], (t, counts[t], after[t])
    for t in ("tb_lote_transp", "tb_lote_transp_item", "tb_lote_transp_item_nodo"):
        assert int(after[t]) >= int(counts[t]), (t, counts[t], after[t])
    assert backups(host), "no pre-upgrade backup in /var/backups/esus"


def test_upgrade_keeps_patients_and_encounters_unchanged():
    before, now = snapshot("sesdf-upgrade-ok")
    assert len(before) == 2 and int(before[0].split("|")[2]) >= 200
    assert now == before


def test_upgrade_left_a_root_only_backup_and_keeps_the_copy_aside_while_it_soaks():
    assert backups("sesdf-upgrade-ok"), "no pre-upgrade backup in /var/backups/esus"
    assert sh("sesdf-upgrade-ok", "stat -c %a /var/backups/esus") == "700"
    assert sh("sesdf-upgrade-ok", f"test -d {ASIDE}/tree/webserver && echo yes || echo no") == "yes"
    soak = upgrade_state("sesdf-upgrade-ok")["last"]["soak"]
    assert soak["state"] == "soaking" and soak["version"] == "4.5.2" and soak["asides"] == [ASIDE]
    assert soak["backup"].startswith("/var/backups/esus/") and "pre-upgrade" in soak["backup"]


def test_logind_no_longer_removes_the_pec_database_semaphores():
    dropin = sh("sesdf-upgrade-ok", "cat /etc/systemd/logind.conf.d/sesdf-esus-removeipc.conf")
    assert "[Login]" in dropin and "RemoveIPC=no" in dropin
    assert sh("sesdf-upgrade-ok", "readlink /etc/localtime").endswith("Brazil/East")  # accepted by the gate


def test_the_installer_config_is_root_only_after_the_upgrade():
    # from 5.3.19 /etc/pec.config may hold databasePassword: 0600 root:root whatever mode the installer wrote
    assert sh("sesdf-upgrade-ok", "stat -c '%a %U %G' /etc/pec.config") == "600 root root"


def test_newer_install_is_refused_and_left_running():
    rc, out = run_upgrade("regiao_oeste")
    assert rc != 0
    assert "newer than the target" in out and "downgrade is never done" in out
    assert "RECUSADO" in out
    assert versions("sesdf-upgrade-new")["config"] == "4.5.5"
    assert app_active("sesdf-upgrade-new")
    assert backups("sesdf-upgrade-new") == []


@pytest.fixture(scope="module")
def region_sul():
    return run_upgrade("regiao_sul")


def test_broken_build_is_rolled_back_to_a_working_428_with_data_intact(region_sul):
    rc, out = region_sul
    assert rc != 0
    assert "FAILED and was ROLLED BACK on sesdf-upgrade-s2" in out
    assert "FALHOU E FOI REVERTIDO" in out
    assert versions("sesdf-upgrade-s2") == {"config": "4.2.8", "database": "4.2.8", "http": None}, "strict double"
    assert status_of("sesdf-upgrade-s2", "/esus/") == "401", "the rollback's readiness took the 401 of a real PEC"
    assert sh("sesdf-upgrade-s2", "stat -c '%a %U %G' /etc/pec.config") == "600 root root", "put back root-only"
    assert app_active("sesdf-upgrade-s2")
    before, now = snapshot("sesdf-upgrade-s2")
    assert now == before
    # the part of the 4.5.2 migration the broken build committed before failing is gone
    count = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'ds_protocolo_envio'"
    assert sql("sesdf-upgrade-s2", count) == "0"
    # the installer's log of the failed run survives the rollback
    assert "Erro ao atualizar o banco de dados" in sh("sesdf-upgrade-s2", "cat /opt/e-SUS/log/instalador.log")


def test_region_stops_at_the_failure_and_the_third_ubs_is_untouched(region_sul):
    out = region_sul[1]
    assert "sesdf-upgrade-ok): já estava na versão alvo" in out
    assert "sesdf-upgrade-s3): NÃO TENTADO" in out
    assert versions("sesdf-upgrade-s3") == {"config": "4.2.8", "database": "4.2.8", "http": None}
    assert app_active("sesdf-upgrade-s3")
    assert backups("sesdf-upgrade-s3") == []
    before, now = snapshot("sesdf-upgrade-s3")
    assert now == before


def test_database_password_never_in_the_run_output(region_sul):
    out = region_sul[1]
    props = sh("sesdf-upgrade-s2", "cat /opt/e-SUS/webserver/config/application.properties")
    key = "spring.datasource.password="
    password = next(line[len(key) :] for line in props.splitlines() if line.startswith(key))
    assert password not in out


def test_after_the_soak_a_later_run_removes_the_copy_aside_and_records_committed(region_sul):
    # region_sul ran after the upgrade: sesdf-upgrade-ok was current, its soak not over, the copy still there
    assert sh("sesdf-upgrade-ok", f"test -d {ASIDE} && echo yes || echo no") == "yes"
    rc, out = run_upgrade("sesdf-upgrade-ok", "commit.yml", "upgrade_soak_hours=0")
    assert rc == 0, out[-2000:]
    assert sh("sesdf-upgrade-ok", f"test -e {ASIDE} && echo yes || echo no") == "no"
    data = upgrade_state("sesdf-upgrade-ok")
    assert data["last"]["soak"]["state"] == "committed" and data["last"]["soak"]["committed_at"]
    assert data["last"]["result"] == "at_target"
    assert backups("sesdf-upgrade-ok"), "the pre-upgrade backup is kept"
    rc, out = run_upgrade("sesdf-upgrade-ok", "commit.yml", "upgrade_soak_hours=0")
    assert rc == 0 and "changed=0" in out


def test_a_pec_that_never_answers_after_its_upgrade_is_rolled_back_with_its_data(region_sul):
    # after the region run (s3 untouched): s3 alone, to a build whose application never answers (a PEC stuck at
    # start-up: the service runs, nothing listens); the readiness wait ends and the run puts 4.2.8 back
    rc, out = run_upgrade(
        "sesdf-upgrade-s3",
        "converge.yml",
        "upgrade_installer_remote_src=/srv/pec-installers/mudo/eSUS-AB-PEC-4.5.2-Linux64.jar",
        "upgrade_start_timeout=45",
    )
    assert rc != 0
    assert "FAILED and was ROLLED BACK on sesdf-upgrade-s3" in out and "FALHOU E FOI REVERTIDO" in out
    assert "Wait until the application answers on its start page" in out
    assert versions("sesdf-upgrade-s3") == {"config": "4.2.8", "database": "4.2.8", "http": None}
    assert status_of("sesdf-upgrade-s3", "/esus/") == "401" and app_active("sesdf-upgrade-s3")
    before, now = snapshot("sesdf-upgrade-s3")
    assert now == before
    assert [b for b in backups("sesdf-upgrade-s3") if "_pre-upgrade-" in b], "the pre-upgrade backup is kept"
    assert upgrade_state("sesdf-upgrade-s3")["last"]["result"] == "rolled_back"
