"""pec_info on a UBS running the PEC double and on a bare host: what a technician reads from it."""

from __future__ import annotations

import csv
import datetime
import glob
import json
import os
import re
import subprocess

import pytest
import testinfra.utils.ansible_runner
from ansible_module import run_module
from labhost import pec_app_password as app_password

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
# podman exec directly: the ansible backend costs seconds per command
testinfra_hosts = [f"podman://{name}" for name in RUNNER.get_hosts("all")]
UBS = "sesdf-pecinfo-ubs"
BARE = "sesdf-pecinfo-bare"


def pec_info(host, **args):
    """Run the module on the host as a technician would (become, not check mode)."""
    return run_module(host.backend.get_hostname(), "sesdf.esus.pec_info", args or None)


def test_pec_info_reports_one_version_from_config_database_and_http(host):
    if host.backend.get_hostname() != UBS:
        pytest.skip("UBS host only")
    result = pec_info(host)
    assert result["failed"] is False and result["changed"] is False
    pec = result["pec"]
    assert pec["installed"] is True
    assert pec["role"] == "local_server"
    assert pec["version"]["config"] == "4.2.8"
    assert pec["version"]["database"] == "4.2.8"
    assert pec["version"]["http"] == "4.2.8"
    assert pec["version"]["agree"] is True and pec["version"]["consensus"] == "4.2.8"
    assert pec["services"]["app"]["active_state"] == "active"
    assert pec["services"]["database"]["active_state"] == "active"
    assert pec["database"]["port"] == 5433 and pec["database"]["name"] == "esus"
    assert pec["database"]["size_bytes"] > 1_000_000
    assert pec["paths"]["pg_bin_dir"].startswith("/opt/e-SUS/database/postgresql-")
    assert pec["problems"] == []


def test_pec_info_reports_what_the_collection_may_write_on_this_pec(host):
    if host.backend.get_hostname() != UBS:
        pytest.skip("UBS host only")
    caps = pec_info(host, schema_trust="double")["pec"]["capabilities"]
    # The double's 4.2.8 has every table and key but ATUALIZAR_PERFIS_IMPORTACAO_CNES (added in its 4.5.5).
    assert {name for name, cap in caps.items() if not cap["supported"]} == {"cnes_profile_reset_off"}
    refused = caps["cnes_profile_reset_off"]
    assert refused["missing"] == ["key ATUALIZAR_PERFIS_IMPORTACAO_CNES in tb_config_sistema"]
    assert refused["manual"].startswith("CNES → Importar") and "Nothing was changed" in refused["reason"]


def test_pec_info_never_returns_the_database_password(host):
    if host.backend.get_hostname() != UBS:
        pytest.skip("UBS host only")
    result = pec_info(host)
    assert app_password(host) not in json.dumps(result)


def test_bare_host_has_role_none_without_failing(host):
    if host.backend.get_hostname() != BARE:
        pytest.skip("bare host only")
    pec = pec_info(host)["pec"]
    assert pec["installed"] is False
    assert pec["role"] == "none"
    assert [p["code"] for p in pec["problems"]] == ["missing"]


def test_database_down_is_reported_with_what_to_do_and_fails_when_asked(host):
    if host.backend.get_hostname() != UBS:
        pytest.skip("UBS host only")
    with host.sudo():
        host.run_expect([0], "systemctl stop e-SUS-PEC.service e-SUS-AB-PostgreSQL.service")
    try:
        pec = pec_info(host)["pec"]
        assert pec["database"]["reachable"] is False
        msgs = " ".join(p["msg"] for p in pec["problems"] if p["code"] == "database")
        assert "not accepting connections" in msgs and "e-SUS-AB-PostgreSQL.service" in msgs
        assert pec["version"]["config"] == "4.2.8" and pec["version"]["database"] is None
        failure = pec_info(host, fail_on=["database"])
        assert failure["failed"] is True
        assert "not accepting connections" in failure["msg"]
    finally:
        with host.sudo():
            host.run_expect([0], "systemctl start e-SUS-AB-PostgreSQL.service e-SUS-PEC.service")


def test_unreadable_credentials_are_a_clear_problem_not_a_traceback(host):
    if host.backend.get_hostname() != UBS:
        pytest.skip("UBS host only")
    cfg = "/opt/e-SUS/webserver/config"
    with host.sudo():
        host.run_expect(
            [0],
            f"mv {cfg}/application.properties {cfg}/application.properties.aside && "
            f"mv {cfg}/credenciais.txt {cfg}/credenciais.txt.aside",
        )
    try:
        pec = pec_info(host)["pec"]
        msgs = " ".join(p["msg"] for p in pec["problems"])
        assert "credentials unreadable" in msgs
        assert "Traceback" not in msgs
    finally:
        with host.sudo():
            host.run_expect(
                [0],
                f"mv {cfg}/application.properties.aside {cfg}/application.properties && "
                f"mv {cfg}/credenciais.txt.aside {cfg}/credenciais.txt",
            )


@pytest.mark.nt("NT-gpma-2")
def test_regional_report_lists_each_ubs_with_its_version(host):
    if host.backend.get_hostname() != UBS:
        pytest.skip("once")
    reports = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "relatorios")
    pages = glob.glob(os.path.join(reports, "relatorio-regiao_norte-*.json"))
    assert len(pages) == 1
    base = pages[0][: -len(".json")]
    rows = {r["host"]: r for r in json.load(open(pages[0], encoding="utf-8"))["rows"]}
    assert rows[UBS]["version"]["current"] == "4.2.8" and rows[UBS]["role"] == "local_server"
    assert rows[BARE]["role"] == "none" and rows[BARE]["reachable"] is True
    # report.yml reads the monthly production: twelve months, this one the last
    months = rows[UBS]["production"]["months"]
    assert len(months) == 12 and months[-1] == datetime.date.today().strftime("%Y-%m")
    html = open(base + ".html", encoding="utf-8").read()
    assert f'<tr data-host="{UBS}">' in html and f'<tr data-host="{BARE}">' in html
    assert "UBS 1 Teste" in html and "servidor local em uso" in html and "<script" not in html
    with open(base + ".csv", encoding="utf-8-sig", newline="") as handle:
        table = {line["CNES"]: line for line in csv.DictReader(handle, delimiter=";")}
    assert table["0010001"]["UBS"] == "UBS 1 Teste" and table["0010001"]["Versão do PEC"].startswith("4.2.8")
    index = open(os.path.join(reports, "index.html"), encoding="utf-8").read()
    assert f'href="{os.path.basename(base)}.html"' in index
    # the same page as PDF/A beside it, linked from the index: what it says in reading order, every font embedded
    assert f'href="{os.path.basename(base)}.pdf"' in index
    text = subprocess.run(["pdftotext", base + ".pdf", "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", " ", text)
    assert "Relatório e-SUS APS — Região Norte" in flat and "UBS 1 Teste" in flat and "servidor local em uso" in flat
    fonts = subprocess.run(["pdffonts", base + ".pdf"], capture_output=True, text=True, check=True).stdout
    assert all(row.split()[-5] == "yes" for row in fonts.splitlines()[2:]), f"a font not embedded: {fonts}"
