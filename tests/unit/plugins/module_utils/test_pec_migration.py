"""The gates before consultation mode (pec_migration.preflight) and the settings change (set_config)."""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_migration import preflight, set_config

UTC = datetime.UTC


def _client(pg_server, conn):
    return PgClient(pg_server["bin_dir"], conn)


def _backup(tmp_path, created, verified=True, tamper=False):
    archive = tmp_path / "esus-migracao.dump.zst"
    archive.write_bytes(b"synthetic archive")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (tmp_path / "esus-migracao.dump.zst.sha256").write_text(f"{digest}  esus-migracao.dump.zst\n")
    if tamper:
        archive.write_bytes(b"synthetic archive, altered")
    fact = tmp_path / "sesdf_esus_backup.fact"
    fact.write_text(
        json.dumps(
            {
                "last_success": created.isoformat(),
                "last_result": "ok" if verified else "failed",
                "verified": verified,
                "path": str(archive),
                "sha256": digest,
                "size_bytes": len(b"synthetic archive"),
                "verify_level": "full_read",
            }
        )
    )
    return str(fact)


def _params(tmp_path, fact, ledger=None):
    return {
        "backup_fact": fact,
        "backup_max_age_hours": 24,
        "lotes_ledger": ledger or str(tmp_path / "ledger.json"),
        "situation_sent": "ENVIADO",
        "pec_config_path": str(tmp_path / "no-pec.config"),
    }


def _ledger(tmp_path, entries):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"format": 1, "lotes": entries}))
    return str(path)


def test_ready_when_everything_exported_and_backup_is_newer(pg_server, pec_db, tmp_path):
    fact = _backup(tmp_path, datetime.datetime.now(UTC))
    with _client(pg_server, pec_db) as client:
        result = preflight(client, _params(tmp_path, fact))
    assert result["ok"] is True, result["problems"]
    assert result["backup"]["file"] == "esus-migracao.dump.zst"


@pytest.mark.nt("NT-apta-2")
def test_pending_records_and_unsent_lotes_block(pg_server, pec_db, tmp_path):
    fact = _backup(tmp_path, datetime.datetime.now(UTC))
    with _client(pg_server, pec_db) as client:
        client.query(
            "INSERT INTO tb_lote_transp (dt_inicio_periodo, dt_fim_periodo, co_situacao) VALUES"
            " ('2024-01-01', '2024-01-07', 1);"
            "INSERT INTO tb_dado_transp (nu_uuid, tp_dado, co_unidade_saude, dt_registro, ds_dado)"
            " SELECT gen_random_uuid(), 4, co_seq_unidade_saude, now(), '\\x00' FROM tb_unidade_saude LIMIT 1"
        )
        result = preflight(client, _params(tmp_path, fact))
    text = " ".join(result["problems"])
    assert not result["ok"]
    assert "1 production records (tb_dado_transp) are not in any lote" in text
    assert "generated but not sent" in text


def test_unconfirmed_ledger_entry_blocks(pg_server, pec_db, tmp_path):
    now = datetime.datetime.now(UTC)
    fact = _backup(tmp_path, now)
    ledger = _ledger(
        tmp_path,
        {
            "1": {"id": 1, "exported_at": (now - datetime.timedelta(hours=1)).isoformat(), "confirmed_at": None},
            "2": {"id": 2, "confirmed_at": (now - datetime.timedelta(hours=1)).isoformat()},
        },
    )
    with _client(pg_server, pec_db) as client:
        result = preflight(client, _params(tmp_path, fact, ledger))
    assert result["ledger"]["unconfirmed"] == ["1"]
    assert any("lotes 1 of the ledger" in p and "not confirmed" in p for p in result["problems"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verified": False}, "is not verified"),
        ({"tamper": True}, "does not match its status"),
        ({"age": 30}, "h old (limit 24 h)"),
    ],
)
def test_bad_backup_blocks(pg_server, pec_db, tmp_path, kwargs, message):
    age = kwargs.pop("age", 0)
    fact = _backup(tmp_path, datetime.datetime.now(UTC) - datetime.timedelta(hours=age), **kwargs)
    with _client(pg_server, pec_db) as client:
        result = preflight(client, _params(tmp_path, fact))
    assert any(message in p for p in result["problems"]), result["problems"]


def test_backup_older_than_last_lote_is_not_the_current_state(pg_server, pec_db, tmp_path):
    fact = _backup(tmp_path, datetime.datetime.now(UTC) - datetime.timedelta(hours=2))
    with _client(pg_server, pec_db) as client:
        client.query(
            "INSERT INTO tb_lote_transp (dt_inicio_periodo, dt_fim_periodo, co_situacao, dt_envio) VALUES"
            " ('2024-01-01', '2024-01-07', 2, now())"
        )
        result = preflight(client, _params(tmp_path, fact))
    assert any("older than the last change (database" in p for p in result["problems"]), result["problems"]


def test_missing_backup_fact_says_run_the_backup_role(pg_server, pec_db, tmp_path):
    with _client(pg_server, pec_db) as client:
        result = preflight(client, _params(tmp_path, str(tmp_path / "absent.fact")))
    assert any("run the backup role" in p for p in result["problems"])


def test_set_config_turns_transmission_off_once(pg_server, pec_db):
    values = {"TRANSMISSAO_AUTOMATICA": "false", "CHAVE_INEXISTENTE": "x"}
    with _client(pg_server, pec_db) as client:
        preview = set_config(client, values, check_mode=True)
        assert preview["changed"] is True
        assert (
            client.scalar("SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'")
            == "true"
        )
        first = set_config(client, values)
        assert first["before"] == {"TRANSMISSAO_AUTOMATICA": "true"}
        assert first["missing"] == ["CHAVE_INEXISTENTE"]
        assert (
            client.scalar("SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'")
            == "false"
        )
        assert set_config(client, values)["changed"] is False
        assert (
            client.scalar("SELECT count(*) FROM tb_config_sistema WHERE co_config_sistema = 'CHAVE_INEXISTENTE'") == "0"
        )
