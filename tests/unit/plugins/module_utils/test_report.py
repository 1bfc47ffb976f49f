"""The regional report: one model, its pendencies, and the pages, CSV and JSON rendered from it."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest
from report_fixtures import SETTINGS, TODAY, fleet, healthy_pec, host

from ansible_collections.sesdf.esus.plugins.module_utils import (
    regime,
    report_csv,
    report_html,
    report_model,
    report_output,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


@pytest.fixture
def model():
    return report_model.build(fleet(), SETTINGS, TODAY)


def rows(model):
    return {r["host"]: r for r in model["rows"]}


def codes(row):
    return [p["code"] for p in row["pendencias"]]


def region(model, name):
    return next(r for r in model["regions"] if r["region"] == name)


def row_of(**kwargs):
    return report_model.build([host("h", **kwargs)], SETTINGS, TODAY)["rows"][0]


def td(page, host_name, field):
    """The <td> of a UBS's row for one field: (class attribute, text)."""
    line = re.search(rf'<tr data-host="{re.escape(host_name)}">(.*?)</tr>', page).group(1)
    match = re.search(rf'<td( class="[a-z]+")? data-field="{field}">(.*?)</td>', line)
    return (match.group(1) or "").strip(), match.group(2)


# ------------------------------------------------------------------------------------------------ the model
def test_a_healthy_ubs_has_no_pendency_and_waits_for_its_migration(model):
    row = rows(model)["ubs-saudavel"]
    assert row["pendencias"] == [] and not row["due"]
    assert row["status_label"] == "aguardando migração"
    assert row["backup"]["age_days"] == 1 and not row["backup"]["late"]


def test_each_case_gets_its_pendency(model):
    by_host = rows(model)
    assert codes(by_host["ubs-backup"]) == ["backup"]
    assert "atualizacao_atrasada" in codes(by_host["ubs-versao"]) and "upgrade" in codes(by_host["ubs-versao"])
    late = next(p for p in by_host["ubs-versao"]["pendencias"] if p["code"] == "atualizacao_atrasada")
    assert "venceu há 11 dia(s)" in late["msg"] and late["due"]
    assert codes(by_host["ubs-fora"]) == ["unreachable"] and by_host["ubs-fora"]["role_label"] == "inacessível"
    assert codes(by_host["ubs-velho"]) == ["estado_desatualizado"]
    assert by_host["ubs-velho"]["states"]["hardening"]["cell"].startswith("desatualizado")
    assert codes(by_host["ubs-sem-estado"]) == ["sem_estado"]
    assert by_host["ubs-sem-estado"]["states"]["hardening"]["cell"] == "sem registro"
    assert codes(by_host["ubs-corrompido"]) == ["estado_ilegivel"]
    assert by_host["ubs-corrompido"]["states"]["maintenance"]["cell"] == "registro ilegível"


def test_each_pendency_carries_the_id_of_the_determination_it_is_about(model):
    nt = {r["host"]: {p["code"]: p["nt"] for p in r["pendencias"]} for r in model["rows"]}
    assert nt["ubs-backup"] == {"backup": "NT-inapta-4"}
    assert nt["ubs-versao"]["atualizacao_atrasada"] == nt["ubs-versao"]["upgrade"] == "NT-inapta-5"
    assert nt["ubs-fora"] == {"unreachable": ""}
    assert nt["ubs-velho"] == {"estado_desatualizado": "NT-inapta-2"}  # the stale record is the hardening one
    waiting = row_of(pec=healthy_pec("4.4.0"), group="ubs_aptas")
    assert [p["nt"] for p in waiting["pendencias"] if p["code"].startswith("atualizacao")] == ["NT-ntinf-1"]
    page = report_html.region_page(model, region(model, "regiao_norte"))
    assert 'data-code="backup" data-nt="NT-inapta-4"' in page


@pytest.mark.nt("NT-gpma-2")
def test_a_region_with_no_ubs_has_its_page_saying_so(model):
    leste = region(model, "regiao_leste")
    assert leste["rows"] == []
    page = report_html.region_page(model, leste)
    assert "Nenhuma UBS desta região está no inventário" in page
    assert "Região Leste: 0 UBS, 0 pendência(s)" in report_model.summary_lines(model)


def test_the_summary_and_the_pages_count_the_same_pendencies(model):
    lines = report_model.summary_lines(model)
    for reg in model["regions"]:
        page = report_html.region_page(model, reg)
        for r in reg["rows"]:
            assert any(
                f"{r['ubs']} (CNES {r['cnes']}" in line and f"pendências: {len(r['pendencias'])}" in line
                for line in lines
            )
            assert td(page, r["host"], "Pendências")[1] == str(len(r["pendencias"]))
            for p in r["pendencias"]:
                assert report_html.e(p["msg"]) in page
    assert sum(len(r["pendencias"]) for r in model["rows"]) == len(model["pendencies"]) > 0


def test_the_previous_rules_are_kept():
    pec = healthy_pec()
    pec["problems"] = [
        {"code": "missing", "msg": "ignored"},
        {"code": "http", "msg": "PEC application does not answer"},
    ]
    pec["capabilities"]["transmission_off"] = {
        "supported": False,
        "missing": ["tb_config_sistema.TRANSMISSAO"],
        "manual": "Administração > Transmissão",
    }
    pec["backup_status"].update(
        check="mismatch", path="/var/backups/x/esus_1.pgdump.zst", verified_at="2026-11-30T02:10:00Z"
    )
    del pec["state"]["hardening"], pec["state"]["upgrade"], pec["state"]["lotes"]
    legacy = {
        "hardening_report": {
            "mode": "enforce",
            "summary": {"pass": 3, "fail": 2, "fixed": 1, "not_verifiable_here": 0},
            "controls": [
                {"id": "ssh_config", "concern": "access", "status": "fail"},
                {"id": "firewall_rules", "concern": "firewall", "status": "fail"},
                {"id": "sudo", "concern": "access", "status": "fixed"},
            ],
        },
        "upgrade_summary": {
            "from_version": "4.2.8",
            "to_version": "4.2.8",
            "target_version": "4.5.2",
            "result": "rolled_back",
            "message": "installer exited 1",
        },
        "lotes_export_deadline": {
            "month": "2026-11",
            "deadline": "2026-12-10",
            "units": [{"cnes": "0010001", "status": "atrasado", "pending_records": 7}],
        },
    }
    row = row_of(pec=pec, legacy=legacy)
    msgs = {p["code"]: p for p in row["pendencias"]}
    assert "missing" not in msgs and msgs["http"]["msg"] == "PEC application does not answer"
    assert (
        "desligar a transmissão automática" in msgs["compat"]["msg"]
        and "Administração > Transmissão" in msgs["compat"]["msg"]
    )
    assert (
        msgs["backup_verificacao"]["severity"] == "critica" and "esus_1.pgdump.zst" in msgs["backup_verificacao"]["msg"]
    )
    assert "2 controle(s) falhando que o modo enforce não corrigiu" in msgs["hardening"]["msg"]
    assert "contas do NTINF, SSH e sudo (1)" in msgs["hardening"]["msg"] and "firewall (1)" in msgs["hardening"]["msg"]
    assert "ssh_config" not in msgs["hardening"]["msg"], "the ids are in the detail, never in the pendency"
    assert row["states"]["hardening"]["cell"] == "modo enforce: 4 ok, 2 falha(s)"
    assert msgs["upgrade"]["msg"] == (
        "a última atualização do PEC para 4.5.2: falhou e foi revertida (installer exited 1); o PEC está em 4.2.8"
    )
    assert "7 registro(s) sem envio confirmado; prazo 10/12/2026" in msgs["cds"]["msg"] and msgs["cds"]["due"]
    assert row["pendencias"][0]["severity"] == "critica", "the most severe first"


def test_the_new_rules():
    pec = healthy_pec("4.2.8")
    pec["backup_status"]["offhost"] = {"state": "failed", "error": "share unreachable"}
    pec["backup_status"]["repo_check"] = {"result": "failed", "checked_at": "2026-11-29T04:00:00Z"}
    pec["backup_status"]["restore_drill"] = {"result": "failed", "finished_at": "2026-11-20T05:00:00Z"}
    pec["state"]["maintenance"]["data"]["steps"]["disk"] = {"status": "alarme", "detail": "disco 95% cheio"}
    pec["state"]["profiles"]["data"] = {"mismatches": 2, "items": [{}, {}]}
    pec["state"]["readiness"]["data"].update(verdict="apta", agrees=False, group="ubs_inaptas", measured_mbps=48.0)
    row = row_of(pec=pec, group="ubs_inaptas", deadline="2026-12-31")
    msgs = {p["code"]: p["msg"] for p in row["pendencias"]}
    assert "está falhando (share unreachable)" in msgs["copia_externa"]
    assert "verificação do repositório de backups falhou em 29/11/2026" in msgs["repositorio"]
    assert "teste de restauração falhou (20/11/2026)" in msgs["teste_restauracao"]
    assert "disco 95% cheio" in msgs["manutencao"] and "2 perfil(is)" in msgs["perfis"]
    assert "48,0 Mbit/s" in msgs["aptidao_divergente"] and "'inapta'" in msgs["aptidao_divergente"]
    assert "faltam 30 dia(s)" in msgs["atualizacao_prevista"]
    assert row["states"]["cnes"]["cell"] == "importado pela API em 29/11/2026 (30/11/2026)"
    assert not next(p for p in row["pendencias"] if p["code"] == "atualizacao_prevista")["due"]
    assert {"copia_externa", "restauracao", "maintenance", "profiles", "readiness"} <= set(row["red_fields"])


def test_a_cnes_file_waiting_for_the_manual_import_is_a_pendency():
    pec = healthy_pec()
    pec["state"]["cnes"]["data"]["pending_manual"] = {
        "file": "XmlParaESUS31_530010.zip",
        "staged_at": "2026-11-30T06:00:00Z",
        "path": "/var/lib/sesdf-esus/cnes/pendente/XmlParaESUS31_530010.zip",
    }
    row = row_of(pec=pec)
    assert codes(row) == ["cnes_manual"] and "XmlParaESUS31_530010.zip" in row["pendencias"][0]["msg"]
    assert row["states"]["cnes"]["cell"].endswith("aguardando importação pela tela do PEC (30/11/2026)")


def test_an_import_sent_through_the_api_without_a_verifiable_end_is_a_confirmation_due_not_an_import():
    pec = healthy_pec()
    pec["state"]["cnes"]["data"]["pending_manual"] = {
        "file": "XmlParaESUS31_530010.zip",
        "staged_at": "2026-11-30T06:00:00Z",
        "method": "api_nao_verificada",
        "path": "/var/lib/sesdf-esus/cnes/recebido/XmlParaESUS31_530010.zip",
    }
    row = row_of(pec=pec)
    assert codes(row) == ["cnes_manual"]
    msg = row["pendencias"][0]["msg"]
    assert "conferir no PEC (menu CNES)" in msg and "cnes_import_confirm_manual=true" in msg
    assert "importar pela tela" not in msg
    assert row["states"]["cnes"]["cell"].endswith("importação enviada pela API sem conclusão verificável (30/11/2026)")


def test_a_restore_drill_never_done_and_an_apt_ubs_offhost_are_not_alarms():
    pec = healthy_pec()
    pec["backup_status"]["restore_drill"] = None
    pec["backup_status"]["offhost"] = {"state": "disabled"}
    row = row_of(pec=pec)
    assert codes(row) == ["teste_restauracao"] and not row["due"]
    assert row_of(pec=pec, group="ubs_inaptas")["red_fields"] == ["copia_externa"]


def test_a_migrated_ubs_is_migrated_and_needs_no_daily_backup():
    pec = healthy_pec()
    pec.update(role="consultation", migration={"migrated": True, "date": "2026-11-03T10:00:00Z"})
    pec["backup_status"]["age_hours"] = 500
    row = row_of(pec=pec)
    assert row["status_label"] == "migrada" and codes(row) == ["perfis_central"]
    assert not row["pendencias"][0]["due"], "not checked yet is said, not an alarm"
    model = report_model.build([host("h", pec=pec)], SETTINGS, TODAY)
    page = report_html.region_page(model, region(model, "regiao_norte"))
    assert "migrada em 03/11/2026; somente consulta (migrado)" in page


@pytest.mark.parametrize("state", ["failing", "stale"])
def test_a_borg_offhost_copy_failing_or_stale_on_an_inapt_ubs_is_due(state):
    pec = healthy_pec()
    pec["backup_status"]["offhost"] = {"state": state, "method": "borg_ssh", "pending_days": 3, "error": "destino fora"}
    pec["backup_status"]["restore_drill"] = {"result": "never"}
    row = row_of(pec=pec, group="ubs_inaptas")
    (pend,) = [p for p in row["pendencias"] if p["code"] == "copia_externa"]
    assert pend["due"] and ("falhando" in pend["msg"] or "atrasada (3 dia(s)" in pend["msg"])
    assert "teste_restauracao" in codes(row)


@pytest.mark.parametrize("group", ["ubs_inaptas", "ubs_aptas"])
@pytest.mark.parametrize(
    "escrow, says",
    [
        ({"escrowed": False, "sources": [], "key_in_vault_export": False}, "ausente"),
        (None, "não verificável"),
    ],
)
def test_a_borg_repository_whose_key_is_not_in_escrow_is_a_high_pendency(group, escrow, says):
    pec = healthy_pec()
    off = pec["backup_status"]["offhost"]
    off.pop("escrow")
    if escrow is not None:
        off["escrow"] = escrow
    row = row_of(pec=pec, group=group)
    (pend,) = [p for p in row["pendencias"] if p["code"] == "custodia_chave"]
    assert pend["severity"] == "alta" and pend["due"] and pend["field"] == "copia_externa"
    assert "chave do repositório de cópias sem custódia (escrow)" in pend["msg"] and says in pend["msg"]
    assert "backup_schedule_borg_export_dir" in pend["msg"] and "backup_schedule_borg_passphrase" in pend["msg"]
    assert row["backup"]["offhost_escrow"] is (False if escrow else None)


def test_an_escrowed_borg_key_or_a_copy_without_borg_is_no_escrow_pendency():
    pec = healthy_pec()
    row = row_of(pec=pec, group="ubs_inaptas")
    assert "custodia_chave" not in codes(row) and row["backup"]["offhost_escrow"] is True
    pec["backup_status"]["offhost"] = {"state": "ok", "last_push": "2026-11-30T02:30:00Z", "destination": "/mnt/ti"}
    row = row_of(pec=pec, group="ubs_inaptas")
    assert "custodia_chave" not in codes(row) and row["backup"]["offhost_escrow"] is None


@pytest.mark.parametrize("role", ["local_server", "consultation"])
def test_copies_the_ubs_deleted_in_its_repository_are_a_critical_pendency_naming_them_and_the_rollback(role):
    pec = healthy_pec()
    pec["role"] = role
    pec["state"]["borg_retention"] = {
        "present": True,
        "produced_at": "2026-11-30T10:00:00Z",
        "data": {
            "status": "critical",
            "critical": True,
            "repository": "/srv/borg/ubs-0010001",
            "lost": [{"name": "esus-0010001-diario-20261101T023000Z", "how": "deleted", "transaction": 88}],
            "suspicious": [
                {"name": "esus-0010001-diario-20261031T235900Z", "why": "backdated", "transaction": 84},
                {"name": "esus-0010001-diario-20990101T023000Z", "why": "future", "start": "2099-01-01T02:30:00Z"},
            ],
            "objects_removed": 2,
            "transactions": [{"id": 84, "time": "2026-11-29T03:10:00Z"}, {"id": 88, "time": "2026-11-29T03:11:00Z"}],
            "rollback_to": 80,
            "recoverable": ["esus-0010001-diario-20261101T023000Z", "esus-0010001-diario-20261128T023000Z"],
            "last_transaction": 92,
        },
    }
    row = row_of(pec=pec, group="ubs_inaptas")
    (pend,) = [p for p in row["pendencias"] if p["code"] == "copias_apagadas"]
    assert pend["severity"] == "critica" and pend["due"] and pend["field"] == "copia_externa"
    assert pend["nt"] == "NT-inapta-4" and row["backup"]["repo_retention"] == "critical"
    assert "esus-0010001-diario-20261101T023000Z (apagada)" in pend["msg"]
    assert "esus-0010001-diario-20261031T235900Z (acrescentada com data anterior" in pend["msg"]
    assert "esus-0010001-diario-20990101T023000Z (acrescentada com data no futuro)" in pend["msg"], (
        "a future-dated archive is the finding, not a record dated in the future"
    )
    assert "mais 2 objeto(s) de dados removido(s)" in pend["msg"] and "transação(ões) 84, 88" in pend["msg"]
    back = "revertendo o repositório para a transação 80, o que traz de volta esus-0010001-diario-20261101T023000Z, "
    assert back in pend["msg"]
    assert "Cópias apagadas pelo servidor da UBS" in pend["msg"]


def test_a_retention_record_the_collection_did_not_write_is_shown_as_such_not_read():
    pec = healthy_pec()
    pec["state"]["borg_retention"] = {"present": True, "data": {"status": "critical", "critical": "sim"}}
    row = row_of(pec=pec, group="ubs_inaptas")
    assert "copias_apagadas" not in codes(row)
    (pend,) = [p for p in row["pendencias"] if p["code"] == "estado_tipo_errado"]
    assert pend["field"] == "copia_externa" and "critical" in pend["msg"]


def test_a_retention_that_found_nothing_or_never_ran_is_no_pendency():
    pec = healthy_pec()
    pec["state"]["borg_retention"] = {"present": True, "data": {"status": "ok", "critical": False}}
    row = row_of(pec=pec, group="ubs_inaptas")
    assert "copias_apagadas" not in codes(row) and row["backup"]["repo_retention"] == "ok"
    row = row_of(pec=healthy_pec(), group="ubs_inaptas")
    assert "copias_apagadas" not in codes(row) and row["backup"]["repo_retention"] == ""


def test_a_flow_that_failed_in_this_run_is_critical():
    row = row_of(failure={"flow": "local", "msg": "backup_schedule_offhost_dest não definido"})
    (pend,) = [p for p in row["pendencias"] if p["code"] == "fluxo_falhou"]
    assert pend["due"] and pend["severity"] == "critica"
    assert "rotina do servidor local desta UBS falhou" in pend["msg"] and "backup_schedule_offhost_dest" in pend["msg"]


@pytest.mark.nt("NT-geral-2")
def test_a_flow_waiting_for_ctinfs_approval_is_a_pendency_naming_where_to_approve():
    """The regime's route of the same run (regime_route, from pec_regime) with the nightly switches off."""
    where = 'workflow "sesdf.esus Norte - migração aprovada pela CTINF" no AWX'
    params = {"host": "h", "group_names": ["ubs", "regiao_norte", "ubs_aptas"], "pec_role": "local_server"}
    params.update(version="4.5.2", maintenance_window="20:00-06:00", migration_date="2026-11-30")
    params.update(migrate_enabled=False, migrate_approval=where)
    route = regime.decide(params, today=TODAY)
    row = row_of(route=route, migration_date="2026-11-30")
    (pend,) = [p for p in row["pendencias"] if p["code"] == "aguardando_aprovacao"]
    assert pend["due"] and pend["field"] == "situacao" and pend["nt"] == "NT-geral-2"
    assert pend["msg"].startswith("aguardando aprovação: apta, data de migração 2026-11-30 alcançada")
    assert where in pend["msg"]
    # the same UBS routed by a run that migrates: no such pendency
    params["migrate_enabled"] = True
    assert "aguardando_aprovacao" not in codes(row_of(route=regime.decide(params, today=TODAY)))


def test_a_migrated_ubs_shows_what_the_central_server_lacks():
    pec = healthy_pec()
    pec.update(role="consultation", migration={"migrated": True, "date": "2026-11-03T10:00:00Z"})
    central = {
        "checked": True,
        "central": "servidor-central",
        "cnes": "0030001",
        "mismatches": [
            {"tipo": "profissional_sem_lotacao_no_central", "nome": "Profissional Sintético 7"},
            {"tipo": "perfil_nao_permitido_para_cbo", "nome": "Profissional Sintético 1"},
        ],
    }
    pec["state"] = {"central_profiles": {"present": True, "produced_at": "2026-11-30T03:00:00Z", "data": central}}
    row = row_of(pec=pec)
    (pend,) = [p for p in row["pendencias"] if p["code"] == "perfis_central"]
    assert pend["due"] and "1 profissional(is) desta UBS sem lotação" in pend["msg"]
    assert "servidor-central" in pend["msg"]
    model = report_model.build([host("h", pec=pec)], SETTINGS, TODAY)
    page = report_html.region_page(model, region(model, "regiao_norte"))
    assert "servidor central: 2 divergência(s)" in page
    pec["state"]["central_profiles"]["data"] = {"checked": False, "reason": "nenhum servidor central no inventário"}
    (pend,) = [p for p in row_of(pec=pec)["pendencias"] if p["code"] == "perfis_central"]
    assert not pend["due"] and "nenhum servidor central no inventário" in pend["msg"]


REFUSED = {
    "transmission_off": {
        "supported": False,
        "missing": ["key TRANSMISSAO_AUTOMATICA in tb_config_sistema"],
        "manual": "Transmissão de dados → Configurações → desativar o envio automático",
    },
    "cnes_profile_reset_off": {
        "supported": False,
        "missing": ["key ATUALIZAR_PERFIS_IMPORTACAO_CNES in tb_config_sistema"],
        "manual": 'CNES → Importar CNES → desmarcar "Atualizar perfis ao importar CNES"',
    },
}


def manual_step(step_id, capability, confirmed_by=None):
    step = {
        "id": step_id,
        "capability": capability,
        "descricao": "desligar a transmissão automática de lotes",
        "caminho": "Transmissão de dados → Configurações → desativar o envio automático",
        "status": "pendente",
        "solicitado_em": "2026-11-28T20:00:00Z",
        "confirmado_por": None,
        "confirmado_em": None,
    }
    if confirmed_by:
        step.update(status="confirmado", confirmado_por=confirmed_by, confirmado_em="2026-11-29T10:15:00Z")
    return step


def test_a_migration_stopped_on_a_manual_step_is_a_due_pendency_saying_what_to_do_and_how_to_confirm():
    pec = healthy_pec()
    pec["capabilities"].update(REFUSED)
    steps = {"NT-apta-transmissao": manual_step("NT-apta-transmissao", "transmission_off")}
    pec["state"]["manual_steps"] = {"present": True, "produced_at": "2026-11-28T20:00:00Z", "data": {"steps": steps}}
    row = row_of(pec=pec)
    (pend,) = [p for p in row["pendencias"] if p["code"] == "passo_manual"]
    assert pend["due"] and "situacao" in row["red_fields"]
    assert "NT-apta-transmissao, pedido em 28/11/2026" in pend["msg"]
    assert "Transmissão de dados → Configurações → desativar o envio automático" in pend["msg"]
    assert "decommission_manual_confirmed" in pend["msg"]
    # the refusal is said once, by its manual step; the CNES switch without a step keeps its compat pendency
    compat = [p["msg"] for p in row["pendencias"] if p["code"] == "compat"]
    assert len(compat) == 1 and "redefina perfis" in compat[0]
    assert row["checks"] == [], "not migrated yet: no consultation check"


def test_a_migrated_ubs_shows_its_confirmed_steps_and_unverifiable_checks_never_as_ok():
    pec = healthy_pec()
    pec.update(role="consultation", migration={"migrated": True, "date": "2026-11-29T10:20:00Z"})
    pec["capabilities"].update(REFUSED)
    steps = {"NT-apta-transmissao": manual_step("NT-apta-transmissao", "transmission_off", "Maria Souza")}
    pec["state"]["manual_steps"] = {"present": True, "produced_at": "2026-11-29T10:15:00Z", "data": {"steps": steps}}
    row = row_of(pec=pec)
    assert "passo_manual" not in codes(row), "a confirmed step is not pending"
    checks = {c["capability"]: c for c in row["checks"]}
    assert set(checks) == {"transmission_off", "cnes_profile_reset_off"}
    assert all(c["status"] == "não verificável" for c in checks.values())
    assert checks["transmission_off"]["detail"] == (
        "confirmado manualmente por Maria Souza em 29/11/2026 (não verificável automaticamente)"
    )
    assert checks["cnes_profile_reset_off"]["detail"].startswith("sem passo manual registrado")
    assert [p["code"] for p in row["pendencias"] if p["code"] == "compat"] == ["compat"], "CNES: no step, still due"
    model = report_model.build([host("h", pec=pec)], SETTINGS, TODAY)
    page = report_html.region_page(model, region(model, "regiao_norte"))
    assert "Passo manual NT-apta-transmissao" in page and "confirmado por Maria Souza em 29/11/2026" in page
    assert (
        "transmissão automática desligada: não verificável - confirmado manualmente por Maria Souza em 29/11/2026 "
        "(não verificável automaticamente)"
    ) in page
    exported = json.loads(report_output.render_files(model)["relatorio-regiao_norte-2026-12-01.json"])["rows"][0]
    assert exported["manual_steps"][0]["confirmado_por"] == "Maria Souza"
    assert {c["status"] for c in exported["checks"]} == {"não verificável"}


@pytest.mark.parametrize(
    "pec",
    [
        "not a dict",
        {"state": "garbage", "installed": True, "role": "local_server"},
        {"state": {"hardening": "x", "lotes": {"data": {"deadline": {"units": ["bad", None]}, "pending_lotes": "n"}}}},
        {
            "backup_status": "x",
            "version": [],
            "capabilities": {"a": "b"},
            "problems": ["x", None],
            "production": {"teams": "x"},
        },
        {
            "production": {
                "months": ["2026-11", 3],
                "teams": [None, {"months": {"2026-11": {"produced": "x"}}}],
                "previous_month": "x",
            }
        },
    ],
)
def test_malformed_input_renders_a_page_never_a_crash(pec):
    model = report_model.build([host("h", pec=pec), {"host": None}, "junk"], SETTINGS, TODAY)
    files = report_output.render_files(model)
    assert "relatorio-regiao_norte-2026-12-01.html" in files
    assert all(r["ubs"] for r in model["rows"])


def test_no_host_at_all_gives_an_index_and_empty_pages():
    model = report_model.build([], {}, TODAY)
    files = report_output.render_files(model)
    assert "Nenhuma região no inventário" in files["index.html"]
    assert report_csv.render([]).count("\n") == 1


# ------------------------------------------------------------------------------------------------ the pages
def test_the_page_marks_due_cells_red_and_stale_ones(model):
    page = report_html.region_page(model, region(model, "regiao_norte"))
    assert td(page, "ubs-backup", "backup")[0] == 'class="due"'
    assert td(page, "ubs-saudavel", "backup") == ("", "30/11/2026 (há 1 dia(s)), em dia")
    cls, text = td(page, "ubs-versao", "versao")
    assert cls == 'class="due"' and "venceu há 11 dia(s)" in text
    assert td(page, "ubs-fora", "situacao")[0] == 'class="due"'
    sul = report_html.region_page(model, region(model, "regiao_sul"))
    assert td(sul, "ubs-velho", "hardening")[0] == 'class="stale"'
    assert td(sul, "ubs-corrompido", "maintenance")[0] == 'class="due"'


def test_the_page_is_self_contained_escaped_and_printable(model):
    page = report_html.all_page(model)
    assert "UBS 1 Saudável &amp; &lt;Cia&gt;" in page and "<Cia>" not in page
    assert '<tr class="grupo"><th colspan="15">Região Sul</th></tr>\n<tr data-host="ubs-velho">' in page
    assert "<script" not in page.lower() and not re.search(r"(src|href)=\"?https?:", page)
    assert "@media print" in page and '<html lang="pt-BR">' in page


def test_the_csv_opens_in_a_pt_br_spreadsheet(model):
    data = report_csv.render(region(model, "regiao_norte")["rows"]).encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert list(table[0]) == list(report_csv.HEADER)
    by_cnes = {line["CNES"]: line for line in table}
    assert by_cnes["0010001"]["UBS"] == "UBS 1 Saudável & <Cia>"
    assert (
        by_cnes["0010001"]["Situação"]
        == "aguardando migração (prevista pelo CTINF para 01/02/2027); servidor local em uso"
    )
    assert by_cnes["0010002"]["Ação necessária"] == "sim" and "backup diário" in by_cnes["0010002"]["O que fazer"]
    assert by_cnes["0010004"]["Situação"].endswith("inacessível") and by_cnes["0010004"]["Pendências"] == "1"


def test_the_json_has_the_rows_of_its_region(model):
    files = report_output.render_files(model)
    doc = json.loads(files["relatorio-regiao_sul-2026-12-01.json"])
    assert doc["region"] == "regiao_sul" and [r["host"] for r in doc["rows"]] == [
        "ubs-velho",
        "ubs-sem-estado",
        "ubs-corrompido",
    ]
    assert len(json.loads(files["relatorio-todas-2026-12-01.json"])["rows"]) == 7


# ------------------------------------------------------------------------------------------------ the files
def test_files_are_written_once_and_check_mode_writes_nothing(model, tmp_path):
    files = report_output.render_files(model)
    dest = str(tmp_path / "relatorios")
    assert report_output.write_files(dest, files, check_mode=True) == sorted(files)
    assert not os.path.exists(dest)
    assert report_output.write_files(dest, files) == sorted(files)
    assert (
        report_output.write_files(dest, report_output.render_files(report_model.build(fleet(), SETTINGS, TODAY))) == []
    )
    written = sorted(os.path.relpath(os.path.join(d, n), dest) for d, _s, names in os.walk(dest) for n in names)
    assert written == sorted(files), "no temporary file left"
    assert oct(os.stat(os.path.join(dest, "index.html")).st_mode & 0o777) == "0o640"
    changed = fleet()
    changed[0]["pec"]["backup_status"]["age_hours"] = 30
    new = report_output.render_files(report_model.build(changed, SETTINGS, TODAY))
    assert report_output.write_files(dest, new, check_mode=True) == [
        "detalhe-2026-12-01/ubs-ubs-saudavel.html",
        "index.html",
        "relatorio-regiao_norte-2026-12-01.csv",
        "relatorio-regiao_norte-2026-12-01.html",
        "relatorio-regiao_norte-2026-12-01.json",
        "relatorio-todas-2026-12-01.csv",
        "relatorio-todas-2026-12-01.html",
        "relatorio-todas-2026-12-01.json",
    ], "only the pages that show the UBS that changed"


def test_with_pdf_each_page_has_its_pdf_beside_it_linked_from_the_index_and_a_rerun_rewrites_nothing(model, tmp_path):
    files = report_output.render_files(model, pdf=True)
    pages = sorted(n for n in files if n.startswith("relatorio-") and n.endswith(".html"))
    pdfs = sorted(n for n in files if n.endswith(".pdf"))
    assert pdfs == [n.removesuffix(".html") + ".pdf" for n in pages] and len(pdfs) == 4
    assert all(files[n].startswith(b"%PDF-") for n in pdfs)
    assert all(f'<a class="pdf" href="{n}">PDF</a>' in files["index.html"] for n in pdfs)
    assert 'class="pdf"' not in report_output.render_files(model)["index.html"], "no link to a PDF not written"
    dest = str(tmp_path / "relatorios")
    assert report_output.write_files(dest, files) == sorted(files)
    again = report_output.render_files(report_model.build(fleet(), SETTINGS, TODAY), pdf=True)
    assert report_output.write_files(dest, again) == [], "same state, same PDFs"


def test_a_bad_report_dir_says_what_to_do(tmp_path):
    with pytest.raises(PecError, match="absolute path"):
        report_output.write_files("relatorios", {"a": "b"})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PecError, match="set report_dir to a writable directory"):
        report_output.write_files(str(blocker / "sub"), {"a": "b"})


def test_the_state_layouts_pec_state_records():
    pec = healthy_pec("4.2.8")
    state = pec["state"]
    # a hardening record written before the findings: only the ids, grouped by what they can tell
    state["hardening"]["data"] = {"mode": "audit", "summary": {"pass": 30, "fail": 2}, "failed": ["nft", "auditd"]}
    state["upgrade"]["data"] = {
        "last": {"version": "4.2.8", "target_version": "4.5.2", "result": "rolled_back", "message": "x"},
        "history": [{"version": "4.2.8", "target_version": "4.5.2", "result": "failed", "message": "y"}],
    }
    state["profiles"]["data"] = {"cnes": "0010001", "lotacoes": 9, "mismatches": [{"tipo": "cbo_divergente"}]}
    state["maintenance"]["data"] = {
        "result": "alarme",
        "finished_at": "2026-11-30T02:35:00-03:00",
        "steps": {"disk": {"status": "alarme", "detail": "/opt 93% cheio"}, "logs": {"status": "ok"}},
    }
    pec["production"]["units"] = [
        {"cnes": "0010001", "months": {"2026-11": {"produced": 80, "sent": 60, "pending": 20}}}
    ]
    row = row_of(pec=pec, deadline="2027-01-31")
    msgs = {p["code"]: p["msg"] for p in row["pendencias"]}
    assert "2 controle(s) falhando em modo auditoria" in msgs["hardening"] and "nft" not in msgs["hardening"]
    assert "falhou e foi revertida (x)" in msgs["upgrade"]
    assert msgs["perfis"].startswith("1 perfil(is)") and "(disk): /opt 93% cheio" in msgs["manutencao"]
    assert row["states"]["upgrade"]["cell"].startswith("PEC 4.2.8: falhou e foi revertida (alvo 4.5.2)")
    assert row["production"]["pending"] == 20
    state["upgrade"]["data"]["last"]["result"] = "at_target"
    assert "upgrade" not in codes(row_of(pec=pec))
    pec["production"] = {"available": False, "reason": "tb_atend sem a coluna dt_inicio"}
    model = report_model.build([host("h", pec=pec)], SETTINGS, TODAY)
    assert "Produção não disponível: tb_atend sem a coluna dt_inicio" in report_html.region_page(
        model, model["regions"][1]
    )


def test_a_restore_drill_that_compared_no_row_hash_is_a_pendency_not_a_pass():
    pec = healthy_pec()
    pec["backup_status"]["restore_drill"] = {
        "result": "ok",
        "finished_at": "2026-11-20T05:00:00Z",
        "hashes_compared": False,
    }
    row = row_of(pec=pec)
    (pend,) = [p for p in row["pendencias"] if p["code"] == "teste_restauracao"]
    assert pend["severity"] == "media" and "conferiu só a contagem de linhas" in pend["msg"]
    assert "20/11/2026" in pend["msg"]


def test_an_inapt_ubs_whose_pec_refuses_the_migration_switches_has_no_pendency_for_them():
    """A real server refuses the migration's three writes; an inapt UBS keeps its server and never runs them, so the
    managers see no daily alarm for them. The same refusals on an apt UBS stay due (its migration will need them)."""
    pec = healthy_pec()
    pec["capabilities"].update(REFUSED)
    inapt = row_of(pec=pec, group="ubs_inaptas")
    assert [p for p in inapt["pendencias"] if p["code"] == "compat"] == []
    apt = row_of(pec=pec, group="ubs_aptas")
    assert len([p for p in apt["pendencias"] if p["code"] == "compat"]) == len(REFUSED)


def test_a_pec_that_refuses_the_db_lotes_is_no_pendency_the_lote_files_are_the_way():
    """Every real server (4.5.2 strict, 5.5) refuses the double's db-mode lotes: the lotes job reads the operator's
    lote files instead, so the refusal is no alarm for an inapt or an apt UBS; a refused write the UBS needs stays."""
    pec = healthy_pec()
    for name in ("create_lotes", "mark_lotes_sent"):
        pec["capabilities"][name] = {"supported": False, "missing": ["tb_situacao_lote_transp"], "manual": "Gerar lote"}
    pec["capabilities"]["change_profiles"] = {"supported": False, "missing": ["tb_perfil.tp_perfil"], "manual": "UI"}
    for group in ("ubs_inaptas", "ubs_aptas"):
        msgs = [p["msg"] for p in row_of(pec=pec, group=group)["pendencias"] if p["code"] == "compat"]
        assert not any("tb_situacao_lote_transp" in m for m in msgs), (group, msgs)
    apt = [p["msg"] for p in row_of(pec=pec, group="ubs_aptas")["pendencias"] if p["code"] == "compat"]
    assert len(apt) == 1 and "tb_perfil.tp_perfil" in apt[0]
