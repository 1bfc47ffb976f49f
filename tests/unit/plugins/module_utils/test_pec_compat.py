# ruff: noqa: S608 (SQL built from the test's own constants)
"""The compatibility layer against a real PostgreSQL: the double's schema is supported; a schema with a column
dropped, renamed or retyped, a configuration key missing or an unknown version is refused, naming what is missing,
and a before/after dump of the whole database proves that no refused capability wrote anything."""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import lotes, pec_profiles
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import CAPABILITIES, CompatRefused, Probe
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient


def _client(pg_server, conn):
    return PgClient(pg_server["bin_dir"], conn)


def dump(pg_server, conn):
    """Schema and data of the whole database, as pg_dump prints them (deterministic for an unchanged database)."""
    with _client(pg_server, conn) as client:
        proc = subprocess.run(
            [client.tool("pg_dump"), "-w", "--no-owner", "-d", conn["name"]],
            capture_output=True,
            text=True,
            env=client.env(),
            check=True,
        )
    # \restrict/\unrestrict carry a random key per run (pg_dump's own guard), not database content.
    return "\n".join(line for line in proc.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def alter(pg_server, conn, sql):
    with _client(pg_server, conn) as client:
        client.query(sql)


def probe_report(pg_server, conn):
    with _client(pg_server, conn) as client:
        report = Probe(client, trust="double").report()
        return report, list(client.executed_queries)


def add_pending(pg_server, conn, count=3):
    alter(
        pg_server,
        conn,
        "INSERT INTO tb_dado_transp (nu_uuid, tp_dado, co_unidade_saude, dt_registro, ds_dado)"
        " SELECT gen_random_uuid(), 2, (SELECT min(co_seq_unidade_saude) FROM tb_unidade_saude), now(), '\\x01'"
        f" FROM generate_series(1, {count})",
    )


def test_the_doubles_schema_supports_every_capability_but_a_key_it_lacks(pg_server, pec_db):
    report, executed = probe_report(pg_server, pec_db)
    assert set(report) == set(CAPABILITIES)
    supported = {name for name, verdict in report.items() if verdict["supported"]}
    # The 4.2.8 baseline has no ATUALIZAR_PERFIS_IMPORTACAO_CNES (the double adds it in 4.5.5).
    assert supported == set(CAPABILITIES) - {"cnes_profile_reset_off"}
    refused = report["cnes_profile_reset_off"]
    assert refused["missing"] == ["key ATUALIZAR_PERFIS_IMPORTACAO_CNES in tb_config_sistema"]
    assert "CNES → Importar" in refused["reason"] and "Nothing was changed" in refused["reason"]
    assert report["create_lotes"]["version"] == "4.2.8" and "test double" in report["create_lotes"]["profile"]
    assert executed and all(q.lstrip().upper().startswith("SELECT") for q in executed), "the probe only reads"
    alter(pg_server, pec_db, "INSERT INTO tb_config_sistema VALUES ('ATUALIZAR_PERFIS_IMPORTACAO_CNES', 'true')")
    assert probe_report(pg_server, pec_db)[0]["cnes_profile_reset_off"]["supported"] is True


@pytest.mark.parametrize("check_mode", [True, False])
def test_lotes_refused_on_a_dropped_column_write_nothing(pg_server, pec_db, tmp_path, check_mode):
    add_pending(pg_server, pec_db)
    alter(pg_server, pec_db, "ALTER TABLE tb_lote_transp DROP COLUMN dt_envio")
    before = dump(pg_server, pec_db)
    options = {"state_dir": str(tmp_path / "state"), "destination": {"type": "path", "path": str(tmp_path / "d")}}
    with _client(pg_server, pec_db) as client, pytest.raises(CompatRefused) as refused:
        lotes.run_export(client, options, check_mode=check_mode)
    assert "column tb_lote_transp.dt_envio" in refused.value.msg
    assert "Transmissão de dados → Gerar novo lote → Salvar em arquivo" in refused.value.msg
    assert refused.value.details["compat"]["capability"] == "create_lotes"
    assert dump(pg_server, pec_db) == before
    assert not (tmp_path / "state").exists() and not (tmp_path / "d").exists()


def test_mark_sent_refused_when_the_sent_situation_is_unknown(pg_server, pec_db, tmp_path):
    options = {
        "state_dir": str(tmp_path / "s"),
        "transfer": False,
        "situation_sent": "TRANSMITIDO",
        "schema_trust": "double",
    }
    before = dump(pg_server, pec_db)
    with _client(pg_server, pec_db) as client, pytest.raises(CompatRefused) as refused:
        lotes.run_export(client, options)
    assert refused.value.details["compat"]["missing"] == ["situation 'TRANSMITIDO' in tb_situacao_lote_transp"]
    assert dump(pg_server, pec_db) == before


def test_lotes_refused_on_a_retyped_payload_column(pg_server, pec_db):
    alter(pg_server, pec_db, "ALTER TABLE tb_dado_transp ALTER COLUMN ds_dado TYPE text USING encode(ds_dado, 'hex')")
    with _client(pg_server, pec_db) as client:
        verdict = Probe(client, trust="double").check("create_lotes")
    assert verdict["supported"] is False
    assert verdict["missing"] == ["column tb_dado_transp.ds_dado of type bytea (it is text)"]


@pytest.mark.parametrize("check_mode", [True, False])
def test_profiles_refused_on_a_renamed_column_write_nothing(pg_server, pec_db, tmp_path, check_mode):
    alter(pg_server, pec_db, "ALTER TABLE rl_ator_papel_perfil RENAME COLUMN co_perfil TO co_perfil_acesso")
    before = dump(pg_server, pec_db)
    params = {
        "profile_name": pec_profiles.DEFAULT_PROFILE_NAME,
        "profile_type": pec_profiles.DEFAULT_PROFILE_TYPE,
        "profile_resources": list(pec_profiles.DEFAULT_RESOURCES),
        "profile_operations": list(pec_profiles.DEFAULT_OPERATIONS),
        "break_glass_login": "00000000272",
        "snapshot_dir": str(tmp_path / "snap"),
    }
    with _client(pg_server, pec_db) as client, pytest.raises(CompatRefused) as refused:
        pec_profiles.run(client, pec_db, params, check_mode)
    assert "column rl_ator_papel_perfil.co_perfil" in refused.value.msg
    assert "Administração → Perfis" in refused.value.msg and "Profissionais → Lotações" in refused.value.msg
    assert dump(pg_server, pec_db) == before
    assert not (tmp_path / "snap").exists()


def test_an_unknown_version_is_refused_even_if_the_tables_look_right(pg_server, pec_db):
    alter(
        pg_server,
        pec_db,
        "UPDATE tb_config_sistema SET ds_texto = '5.5.0' WHERE co_config_sistema = 'VERSAOBANCODADOS'",
    )
    report = probe_report(pg_server, pec_db)[0]
    assert not any(v["supported"] for v in report.values())
    assert report["change_profiles"]["missing"] == ["a schema profile for PEC 5.5.0 (known: 4.2.0 to before 5.0.0)"]


@pytest.mark.parametrize("check", [True, False])
def test_pec_config_refuses_a_missing_transmission_key_before_any_write(pg_server, pec_db, run_module, check):
    alter(pg_server, pec_db, "DELETE FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'")
    before = dump(pg_server, pec_db)
    settings = {"TRANSMISSAO_AUTOMATICA": "false"}
    failed = run_module("pec_config", pec_db, check, settings=settings, capability="transmission_off")[1]
    assert failed["failed"] is True and failed["supported"] is False
    assert "key TRANSMISSAO_AUTOMATICA in tb_config_sistema" in failed["msg"]
    assert "Transmissão de dados → Configurações" in failed["msg"]
    skipped = run_module(
        "pec_config", pec_db, check, settings=settings, capability="transmission_off", unsupported="skip"
    )[1]
    assert skipped["changed"] is False and skipped["supported"] is False and "failed" not in skipped
    assert skipped["compat"]["manual"] == CAPABILITIES["transmission_off"]["manual"]
    assert any("refused" in str(w) for w in skipped["warnings"]), skipped["warnings"]
    assert dump(pg_server, pec_db) == before


def test_pec_config_sets_a_supported_capability(pg_server, pec_db, run_module):
    out = run_module(
        "pec_config",
        pec_db,
        settings={"TRANSMISSAO_AUTOMATICA": "false"},
        capability="transmission_off",
        schema_trust="double",
    )[1]
    assert out["changed"] is True and out["supported"] is True and out["after"] == {"TRANSMISSAO_AUTOMATICA": "false"}
    with _client(pg_server, pec_db) as client:
        value = client.scalar(
            "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'"
        )
    assert value == "false"
