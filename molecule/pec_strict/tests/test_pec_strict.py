"""A UBS on the strict PEC double (only what is known of a real 4.5.2): what the collection refuses, reports and
leaves untouched, and that decommission still completes the rest without claiming what it refused."""

from __future__ import annotations

import io
import os
import zipfile

import testinfra.utils.ansible_runner
from ansible_module import run_module
from labhost import not_view_only, read_json, sh, sql

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = [f"podman://{name}" for name in RUNNER.get_hosts("all")]
DUMP = os.path.join(os.path.dirname(__file__), "..", "files", "dump.sh")
REFUSED = {"transmission_off", "cnes_profile_reset_off"}
LOTES_DIR = "/opt/e-SUS/webserver/lotes"


def test_the_strict_double_is_what_a_real_452_offers(host):
    assert sh(host, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/api/public/info") == "404"
    assert sh(host, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/esus/") == "200"
    assert sql(host, "SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'postgres'") == "t"
    assert "md5" in sh(host, "grep -v '^#' /opt/e-SUS/database/postgresql-*/data/pg_hba.conf | grep 127.0.0.1")
    invented = (
        "SELECT count(*) FROM tb_config_sistema WHERE co_config_sistema IN"
        " ('TRANSMISSAO_AUTOMATICA', 'HORARIO_TRANSMISSAO', 'ATUALIZAR_PERFIS_IMPORTACAO_CNES')"
    )
    assert sql(host, invented) == "0"


def test_pec_info_reports_the_refused_capabilities_and_why(host):
    result = run_module(host.backend.get_hostname(), "sesdf.esus.pec_info")
    caps = result["pec"]["capabilities"]
    assert {name for name, cap in caps.items() if not cap["supported"]} == REFUSED
    assert caps["transmission_off"]["missing"] == ["key TRANSMISSAO_AUTOMATICA in tb_config_sistema"]
    assert caps["transmission_off"]["manual"].startswith("Transmissão de dados")
    assert caps["change_profiles"]["supported"] and caps["create_lotes"]["supported"]
    assert result["pec"]["version"]["database"] == "4.5.2" and result["pec"]["version"]["http"] is None


def test_a_refused_switch_wrote_nothing(host):
    with open(DUMP, encoding="utf-8") as handle:
        now = sh(host, "sh", stdin=handle.read())
    before = sh(host, "cat /root/strict-before.sql")
    assert now == before, "the schema, tb_config_sistema or the transmission tables changed"


def test_decommission_completed_the_rest_and_kept_the_refused_switches_as_manual_steps(host):
    assert not_view_only(host) == []
    record = read_json(host, "/etc/ansible/facts.d/sesdf_esus_migration.fact")
    assert record["migrated"] is True and record["role"] == "consultation"
    assert set(record["manual_steps"]) == REFUSED
    assert record["manual_steps"]["transmission_off"].startswith("Transmissão de dados")
    assert not any("transmiss" in key.lower() for key in record if key != "manual_steps")


def test_the_pec_saved_its_automatic_lote_as_a_zip_of_cnes_uuid_entries(host):
    names = sh(host, f"ls {LOTES_DIR}").split()
    assert names and all(n.startswith("lote-") and n.endswith(".zip") for n in names)
    data = host.file(f"{LOTES_DIR}/{names[0]}").content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = archive.namelist()
    assert entries and all(e.startswith("0030001-") and e.endswith(".esus") for e in entries)
