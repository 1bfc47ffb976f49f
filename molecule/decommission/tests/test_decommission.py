# ruff: noqa: S608 (SQL built from the test's own constants)
"""A migrated UBS in consultation mode: what GPMA, NTINF and an auditor would check on the server."""

from __future__ import annotations

import json

import pytest
from labhost import lotacao_profiles, not_view_only, sql

VIEW = "Visualização de prontuário"
BREAK_GLASS = "00000000272"


@pytest.mark.nt("NT-apta-3")
def test_every_lotacao_has_only_the_view_only_profile(host):
    assert len(lotacao_profiles(host)) >= 8
    assert not_view_only(host, VIEW) == []


def test_only_the_break_glass_account_still_administers(host):
    admins = sql(
        host,
        "SELECT u.ds_login FROM tb_adm_geral g JOIN tb_ator_papel ap ON ap.co_seq_ator_papel = g.co_ator_papel"
        " JOIN tb_prof p ON p.co_seq_prof = ap.co_prof JOIN tb_usuario u ON u.co_seq_usuario = p.co_usuario",
    )
    assert admins == BREAK_GLASS
    assert sql(host, "SELECT count(*) FROM tb_adm_municipal") == "0"
    other_admin_profiles = sql(
        host,
        "SELECT count(*) FROM rl_ator_papel_perfil r JOIN tb_ator_papel ap ON ap.co_seq_ator_papel = r.co_ator_papel"
        " JOIN tb_prof p ON p.co_seq_prof = ap.co_prof JOIN tb_usuario u ON u.co_seq_usuario = p.co_usuario"
        f" WHERE ap.tp_ator_papel <> 'LOTACAO' AND u.ds_login <> '{BREAK_GLASS}'",
    )
    assert other_admin_profiles == "0"


def test_view_only_profile_grants_nothing_but_viewing(host):
    grants = sql(
        host,
        "SELECT DISTINCT pr.tp_operacao FROM tb_perfil_recurso pr JOIN tb_perfil pf ON pf.co_seq_perfil = pr.co_perfil"
        f" WHERE pf.no_perfil = '{VIEW}'",
    )
    assert grants == "VISUALIZAR"


def test_patient_data_unchanged(host):
    now = sql(
        host,
        "SELECT (SELECT count(*) FROM tb_cidadao), (SELECT md5(string_agg(c::text, '|' ORDER BY co_seq_cidadao))"
        " FROM tb_cidadao c), (SELECT count(*) FROM tb_atend), (SELECT md5(string_agg(a::text, '|'"
        " ORDER BY co_seq_atend)) FROM tb_atend a)",
    )
    before = host.file("/root/patients-before.txt").content_string.strip()
    assert now == before


@pytest.mark.nt("NT-apta-1")
def test_automatic_transmission_off(host):
    assert sql(host, "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'") == (
        "false"
    )


def test_collection_jobs_removed_and_extra_service_masked(host):
    assert not host.file("/etc/cron.d/sesdf-esus-cnes-import").exists
    timer = host.service("sesdf-esus-backup.timer")
    assert not timer.is_running and not timer.is_enabled
    extra = host.run("systemctl is-enabled sesdf-lab-extra.service").stdout.strip()
    assert extra == "masked"
    assert not host.service("sesdf-lab-extra.service").is_running


@pytest.mark.nt("NT-apta-1")
def test_pec_still_serves_consultation_behind_the_firewall(host):
    assert host.service("e-SUS-PEC.service").is_running
    assert host.service("e-SUS-AB-PostgreSQL.service").is_running
    assert host.service("sesdf-esus-consultation-firewall.service").is_enabled
    rules = host.check_output("nft list table inet sesdf_consultation")
    assert "policy drop" in rules and "tcp dport 22 accept" in rules and "tcp dport 8080 accept" in rules
    assert '"versao"' in host.check_output("curl -fsS http://127.0.0.1:8080/api/public/info")


def test_migration_record_and_snapshot(host):
    record = json.loads(host.file("/etc/ansible/facts.d/sesdf_esus_migration.fact").content_string)
    backup = json.loads(host.file("/etc/ansible/facts.d/sesdf_esus_backup.fact").content_string)
    assert record["migrated"] is True and record["role"] == "consultation"
    assert record["version"] == "4.2.8"
    assert record["backup"]["sha256"] == backup["sha256"] and record["backup"]["file"].startswith("esus")
    assert record["lotes_sent"] == 1
    assert record["professionals_moved"] >= 8
    assert len(record["profile_snapshots"]) == 1, "one snapshot: the second run changed nothing"
    snap = host.file(record["profile_snapshots"][0])
    assert snap.mode == 0o600 and snap.user == "root"
    assert host.file("/var/lib/sesdf-esus/profile-snapshots").mode == 0o700
    removed = json.loads(snap.content_string)["removed"]
    assert len(removed["tb_adm_geral"]) == 1 and removed["rl_ator_papel_perfil"]


def test_the_switch_this_pec_refused_is_a_confirmed_manual_step_not_a_write(host):
    steps = json.loads(host.file("/etc/ansible/facts.d/sesdf_esus_manual_steps.fact").content_string)["data"]["steps"]
    assert set(steps) == {"NT-cnes-perfis"}
    assert steps["NT-cnes-perfis"]["status"] == "confirmado"
    assert steps["NT-cnes-perfis"]["confirmado_por"] == "Técnico do Laboratório"
    record = json.loads(host.file("/etc/ansible/facts.d/sesdf_esus_migration.fact").content_string)
    assert record["manual_steps"] == steps and list(record["switched_off"]) == ["transmission_off"]
    assert sql(host, "SELECT count(*) FROM tb_config_sistema WHERE co_config_sistema LIKE 'ATUALIZAR_PERFIS%'") == "0"
