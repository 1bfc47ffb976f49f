"""Fixtures of the module_utils tests: the backup tests' source database."""

from __future__ import annotations

import pytest
from backup_helpers import CANARY, DB

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient


@pytest.fixture(scope="session")
def source(pg_server):
    conn = {k: pg_server[k] for k in ("host", "port", "user", "password")}
    with PgClient(pg_server["bin_dir"], dict(conn, name="postgres")) as client:
        client.query(f"DROP DATABASE IF EXISTS {DB}")
        client.query(f"CREATE DATABASE {DB}")
        client.query("DROP ROLE IF EXISTS canary_user")
        client.query(f"CREATE ROLE canary_user LOGIN SUPERUSER PASSWORD '{CANARY}'")
    with PgClient(pg_server["bin_dir"], dict(conn, name=DB)) as client:
        client.query(
            "CREATE TABLE tb_cidadao (co_seq_cidadao bigserial PRIMARY KEY, no_cidadao text, dt_nascimento date,"
            " ds_obs text, bin bytea);"
            "INSERT INTO tb_cidadao (no_cidadao, dt_nascimento, ds_obs, bin) SELECT 'Cidadão ' || g,"
            " date '1950-01-01' + g, repeat(md5(g::text), 20), decode(md5(g::text), 'hex')"
            " FROM generate_series(1, 20000) g;"
            "CREATE TABLE tb_atend (co_seq_atend bigserial PRIMARY KEY, co_cidadao bigint REFERENCES tb_cidadao,"
            " dt_atend timestamp); INSERT INTO tb_atend (co_cidadao, dt_atend) SELECT g, now() FROM"
            " generate_series(1, 5000) g; CREATE TABLE tb_config_sistema (co_config_sistema text primary key,"
            " ds_texto text); INSERT INTO tb_config_sistema VALUES ('VERSAOBANCODADOS', '4.2.8')"
        )
    return dict(pg_server, name=DB)


@pytest.fixture
def pec_strict_db(pg_server, pec_db):
    """``pec_db`` reshaped as real servers are (survey_helpers.STRICT_SHAPE): the strict double's tb_config_sistema,
    PEC 4.5.2, transmission per destination node and no tb_situacao_lote_transp."""
    from survey_helpers import STRICT_SHAPE

    with PgClient(pg_server["bin_dir"], pec_db) as client:
        client.query(STRICT_SHAPE)
    return pec_db
