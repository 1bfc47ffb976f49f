"""The hardening findings on the managers' pages: grouped by the note's item and by what to do, with counts, in
Portuguese; audit mode says it is audit mode and what enforce would change; the control ids only in the detail."""

from __future__ import annotations

import re

import pytest
from report_fixtures import SETTINGS, TODAY, healthy_pec, host

from ansible_collections.sesdf.esus.plugins.module_utils import report_csv, report_hardening, report_html, report_model

FINDINGS = [
    {"id": "whitelist_services", "concern": "whitelist", "status": "fail"},
    {"id": "firewall_rules", "concern": "firewall", "status": "fail"},
    {"id": "cis_1.5.1", "concern": "cis_sysctl", "status": "fail", "title": "ASLR"},
    {"id": "cis_3.3.2", "concern": "cis_sysctl", "status": "fail", "title": "redirecionamentos"},
    {"id": "cis_3.3.3", "concern": "cis_sysctl", "status": "fail", "title": "rotas de origem"},
    {"id": "cis_2.3.2.2", "concern": "cis_time", "status": "not_verifiable_here", "title": "hora"},
]
IDS = [f["id"] for f in FINDINGS]


def hardening(mode, findings=None):
    findings = FINDINGS if findings is None else findings
    failed = [f["id"] for f in findings if f["status"] == "fail"]
    return {
        "mode": mode,
        "summary": {"pass": 40, "fail": len(failed), "not_verifiable_here": len(findings) - len(failed)},
        "failed": failed,
        "not_verifiable_here": [f["id"] for f in findings if f["status"] != "fail"],
        "findings": findings,
    }


def model_of(data):
    pec = healthy_pec()
    pec["state"]["hardening"]["data"] = data
    return report_model.build([host("ubs-h", pec=pec)], SETTINGS, TODAY)


def hardening_pendencies(model):
    return {p["nt"]: p for p in model["rows"][0]["pendencias"] if p["code"] == "hardening"}


@pytest.mark.nt("NT-inapta-2")
def test_audit_mode_groups_the_failures_by_the_notes_item_and_says_what_enforce_would_change():
    model = model_of(hardening("audit"))
    pend = hardening_pendencies(model)
    assert set(pend) == {"NT-inapta-1", "NT-inapta-2"}
    access = pend["NT-inapta-2"]["msg"]
    assert access.startswith(
        "segurança - acesso ao servidor restrito e controlado (NT-inapta-2): 4 controle(s) falhando em modo "
        "auditoria (nada foi alterado no servidor)."
    )
    assert "firewall (1): o modo enforce aplica as regras do firewall (nftables)" in access
    assert "parâmetros do kernel (CIS) (3): o modo enforce grava e aplica os parâmetros do kernel" in access
    assert access.endswith("Para corrigir: rodar playbooks/harden.yml com hardening_mode=enforce")
    assert "aplicações no servidor (1): o modo enforce remove os pacotes proibidos" in pend["NT-inapta-1"]["msg"]
    assert model["rows"][0]["states"]["hardening"]["cell"] == (
        "modo auditoria: 40 ok, 5 falha(s), 1 não verificável(is) aqui (30/11/2026)"
    )


def test_enforce_mode_says_what_is_left_to_do_by_hand():
    pend = hardening_pendencies(model_of(hardening("enforce")))
    access = pend["NT-inapta-2"]["msg"]
    assert "4 controle(s) falhando que o modo enforce não corrigiu" in access and "modo enforce aplica" not in access
    assert "firewall (1): definir as redes que podem acessar o PEC e o SSH" in access
    assert "pedir à CTINF que o autorize" in pend["NT-inapta-1"]["msg"]


def test_no_raw_id_in_the_table_the_pendencies_or_the_csv_only_in_the_ubs_security_detail_each_once():
    model = model_of(hardening("audit"))
    row = model["rows"][0]
    page = report_html.region_page(model, model["regions"][1])
    ubs = report_html.ubs_page(model, row)
    heading = '<h2 id="seguranca-ubs-h">Segurança por item da Nota Técnica</h2>'
    concerns, detail = ubs.split(heading)[0], ubs.split(heading)[1].split("<h2>Histórico")[0]
    for control in IDS:
        assert control not in page and control not in concerns and control not in report_csv.render([row])
        assert detail.count(control) == 1
    # each pendency on the region's page links to the detail on the UBS's page; on that page, to its section
    assert page.count('href="detalhe-2026-12-01/ubs-ubs-h.html#seguranca-ubs-h">detalhe</a>') == 2
    assert concerns.count('href="#seguranca-ubs-h">detalhe</a>') == 2
    assert "modo auditoria: nada foi alterado no servidor" in detail
    lines = re.findall(r'<tr data-nt="([^"]+)" data-group="([^"]+)">(.*?)</tr>', detail)
    assert [(nt, group) for nt, group, _cells in lines] == [
        ("NT-inapta-1", "whitelist"),
        ("NT-inapta-2", "firewall"),
        ("NT-inapta-2", "cis_sysctl"),
        ("NT-inapta-2", "cis_time"),
    ]
    cis_time = lines[3][2]
    assert '<td class="num">0</td><td class="num">1</td>' in cis_time and "não verificável neste servidor" in cis_time


def test_a_record_written_before_the_findings_is_grouped_by_what_its_ids_tell():
    old = {"mode": "audit", "summary": {"pass": 30, "fail": 3}, "failed": ["whitelist_sockets", "cis_1.5.1", "nft"]}
    groups = {g["concern"]: g["failed"] for g in report_hardening.groups(old)}
    assert groups == {"whitelist": ["whitelist_sockets"], "cis": ["cis_1.5.1"], "": ["nft"]}
    assert set(hardening_pendencies(model_of(old))) == {"NT-inapta-1", "NT-inapta-2"}


def test_failures_the_record_does_not_name_are_still_a_pendency():
    pend = hardening_pendencies(model_of({"mode": "enforce", "summary": {"pass": 30, "fail": 2}}))
    assert pend["NT-inapta-2"]["msg"].startswith("segurança: 2 controle(s) falhando (o registro não diz quais)")
    assert pend["NT-inapta-2"]["link"] == ""


def test_the_maintenance_routine_control_is_under_its_own_item():
    data = hardening("enforce", [{"id": "maintenance_routine", "concern": "maintenance", "status": "fail"}])
    assert "rotina de manutenção periódica (NT-inapta-3)" in hardening_pendencies(model_of(data))["NT-inapta-3"]["msg"]


def test_only_unverifiable_controls_are_no_pendency_but_are_in_the_detail():
    data = hardening("audit", [FINDINGS[-1]])
    model = model_of(data)
    assert hardening_pendencies(model) == {}
    assert "cis_2.3.2.2" in report_html.ubs_page(model, model["rows"][0])


def test_every_group_is_under_an_item_of_the_note_the_hardening_implements():
    assert {nt for nt, *_rest in report_hardening.GROUPS.values()} <= set(report_hardening.ITEMS)
    assert all(label and enforce and manual for _nt, label, enforce, manual in report_hardening.GROUPS.values())
