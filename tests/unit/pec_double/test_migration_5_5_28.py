# ruff: noqa: S608 (SQL built from the test's own constants)
"""The double's 4.5.5 -> 5.5.28 migration (tests/pec_double/sql/migrations/5.5.28.sql) on a database in use: the
columns and types a real 5.5 shows, and every row of the synthetic data carried over."""

from __future__ import annotations

import pathlib
import re

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

MIGRATION = pathlib.Path(__file__).parents[2] / "pec_double" / "sql" / "migrations" / "5.5.28.sql"

# More synthetic data on the 4.5.5 schema, written as the double's generator writes it (pec-double-generate): a unit
# whose IBGE code is already 7 digits, one whose 6-digit code is not among tb_localidade's seeds, an inactive team,
# a blocked professional with an inactive lotação there, a municipal administrator of a município no unit is in,
# and an inactive custom profile that is not a default one, with grants.
EXTRA = """
INSERT INTO tb_unidade_saude (nu_cnes, no_unidade_saude, co_ibge_municipio) VALUES ('0030001', 'UBS Goiânia Sintética',
  '5208707'), ('0040001', 'UBS Florianópolis Sintética', '420540') ON CONFLICT (nu_cnes) DO NOTHING;
INSERT INTO tb_equipe (nu_ine, no_equipe, co_unidade_saude, tp_equipe, st_ativo)
  SELECT '0000400001', 'ESF 01 - Sintética', co_seq_unidade_saude, '70', false FROM tb_unidade_saude
  WHERE nu_cnes = '0040001';
WITH u AS (INSERT INTO tb_usuario (ds_login, ds_senha, st_bloqueado, st_forcar_troca_senha)
           VALUES ('66666666666', '!sintetico', true, false) RETURNING co_seq_usuario),
 pr AS (INSERT INTO tb_prof (co_usuario, nu_cns, no_profissional, nu_cpf, dt_nascimento, no_sexo)
        SELECT co_seq_usuario, '700000000000006', 'Profissional Sintético 006', '66666666666', '1980-01-01',
               'FEMININO' FROM u RETURNING co_seq_prof),
 ap AS (INSERT INTO tb_ator_papel (co_prof, tp_ator_papel) SELECT co_seq_prof, 'LOTACAO' FROM pr
        RETURNING co_seq_ator_papel),
 l AS (INSERT INTO tb_lotacao (co_ator_papel, co_cbo, co_unidade_saude, co_equipe, st_ativo, dt_importacao_cnes)
       SELECT ap.co_seq_ator_papel, (SELECT co_cbo FROM tb_cbo WHERE co_cbo_2002 = '223565'),
              (SELECT co_seq_unidade_saude FROM tb_unidade_saude WHERE nu_cnes = '0040001'),
              (SELECT co_seq_equipe FROM tb_equipe WHERE nu_ine = '0000400001'), false, now() FROM ap
       RETURNING co_ator_papel)
INSERT INTO rl_ator_papel_perfil (co_ator_papel, co_perfil)
SELECT l.co_ator_papel, (SELECT co_seq_perfil FROM tb_perfil WHERE no_perfil = 'Enfermeiro') FROM l;
WITH u AS (INSERT INTO tb_usuario (ds_login, ds_senha) VALUES ('77777777777', '!sintetico') RETURNING co_seq_usuario),
 pr AS (INSERT INTO tb_prof (co_usuario, no_profissional, nu_cpf)
        SELECT co_seq_usuario, 'Gestor Sintético 007', '77777777777' FROM u RETURNING co_seq_prof),
 ap AS (INSERT INTO tb_ator_papel (co_prof, tp_ator_papel) SELECT co_seq_prof, 'ADMINISTRADOR_MUNICIPAL' FROM pr
        RETURNING co_seq_ator_papel)
INSERT INTO tb_adm_municipal (co_ator_papel, co_ibge_municipio) SELECT co_seq_ator_papel, '4314902' FROM ap;
INSERT INTO tb_perfil (no_perfil, tp_perfil, st_ativo, st_padrao) VALUES ('Perfil Sintético', 'LOTACAO', false, false);
INSERT INTO tb_perfil_recurso (co_perfil, co_recurso, tp_operacao)
SELECT p.co_seq_perfil, r.co_recurso, 'VISUALIZAR' FROM tb_perfil p, tb_recurso r
WHERE p.no_perfil = 'Perfil Sintético' AND r.no_recurso IN ('PRONTUARIO', 'AGENDA');
"""

# What each table holds, in a form both schemas give (flags as 0/1; a municipal administrator's IBGE code is read
# through tb_localidade after, completed to 7 digits by ibge7 before): the migration must carry every row over.
BEFORE = {
    "tb_usuario": "SELECT ds_login, st_bloqueado::int, st_forcar_troca_senha::int, ds_senha FROM tb_usuario",
    "tb_prof": "SELECT co_seq_prof, co_usuario, no_profissional, nu_cpf, nu_cns FROM tb_prof",
    "tb_ator_papel": "SELECT co_seq_ator_papel, co_prof, tp_ator_papel FROM tb_ator_papel",
    "tb_lotacao": "SELECT l.co_ator_papel, l.co_cbo, l.co_unidade_saude, l.co_equipe, l.st_ativo::int, ap.co_prof"
    " FROM tb_lotacao l JOIN tb_ator_papel ap ON ap.co_seq_ator_papel = l.co_ator_papel",
    "tb_unidade_saude": "SELECT co_seq_unidade_saude, nu_cnes, co_ibge_municipio, st_ativo::int FROM tb_unidade_saude",
    "tb_equipe": "SELECT co_seq_equipe, nu_ine, st_ativo::int FROM tb_equipe",
    "tb_perfil": "SELECT co_seq_perfil, no_perfil, tp_perfil, st_ativo::int, CASE WHEN st_padrao THEN no_perfil END"
    " FROM tb_perfil",
    "tb_perfil_recurso": "SELECT pr.co_perfil, r.no_recurso, pr.tp_operacao FROM tb_perfil_recurso pr"
    " JOIN tb_recurso r ON r.co_recurso = pr.co_recurso",
    "tb_adm_municipal": "SELECT co_ator_papel, co_ibge_municipio FROM tb_adm_municipal",
    "rl_ator_papel_perfil": "SELECT co_ator_papel, co_perfil FROM rl_ator_papel_perfil",
    "tb_cidadao": "SELECT co_seq_cidadao, no_cidadao, st_faleceu::int FROM tb_cidadao",
}
AFTER = {
    "tb_usuario": "SELECT ds_login, st_bloqueado, st_forcar_troca_senha, ds_senha FROM tb_usuario",
    "tb_prof": "SELECT co_seq_prof, co_usuario, no_civil_profissional, nu_cpf, nu_cns FROM tb_prof",
    "tb_ator_papel": "SELECT co_seq_ator_papel, co_prof, no_tipo_ator_papel FROM tb_ator_papel",
    "tb_lotacao": "SELECT co_ator_papel, co_cbo, co_unidade_saude, co_equipe, st_ativo, co_prof FROM tb_lotacao",
    "tb_unidade_saude": "SELECT co_seq_unidade_saude, nu_cnes, co_ibge_municipio, st_ativo FROM tb_unidade_saude",
    "tb_equipe": "SELECT co_seq_equipe, nu_ine, st_ativo FROM tb_equipe",
    "tb_perfil": "SELECT co_seq_perfil, no_perfil, type, situation, no_perfil_padrao FROM tb_perfil",
    "tb_perfil_recurso": "SELECT co_perfil, no_recurso, tp_operacao FROM tb_perfil_recurso",
    "tb_adm_municipal": "SELECT m.co_ator_papel, t.co_ibge_dbl FROM tb_adm_municipal m"
    " JOIN tb_localidade t ON t.co_localidade = m.co_localidade",
    "rl_ator_papel_perfil": "SELECT co_ator_papel, co_perfil FROM rl_ator_papel_perfil",
    "tb_cidadao": "SELECT co_seq_cidadao, no_cidadao, st_faleceu FROM tb_cidadao",
}

COUNT_TABLES = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    " AND table_type = 'BASE TABLE' ORDER BY 1"
)


def ibge7(code):
    """A 6-digit IBGE code with its check digit (weights 1,2,1,2,1,2, the digits of each product summed)."""
    if not re.fullmatch(r"\d{6}", code):
        return code
    total = sum(sum(divmod(int(d) * (1 + i % 2), 10)) for i, d in enumerate(code))
    return code + str((10 - total % 10) % 10)


def _query(pg_server, conn, sql):
    with PgClient(pg_server["bin_dir"], conn) as client:
        return client.query(sql)


def _snapshot(pg_server, conn, queries):
    return {table: sorted(map(tuple, _query(pg_server, conn, sql))) for table, sql in queries.items()}


def _counts(pg_server, conn):
    tables = [r[0] for r in _query(pg_server, conn, COUNT_TABLES)]
    union = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables)
    return {t: int(n) for t, n in _query(pg_server, conn, union)}


def _columns(pg_server, conn, table):
    rows = _query(
        pg_server,
        conn,
        "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
        f" WHERE table_schema = current_schema() AND table_name = '{table}'",
    )
    return {name: (kind, nullable == "YES", default) for name, kind, nullable, default in rows}


@pytest.fixture
def migrated(pg_server, pec_double):
    """(connection, snapshot before, row counts before) of the synthetic UBS plus EXTRA, migrated 4.5.5 -> 5.5.28."""
    conn = pec_double.create("4.5.5")
    _query(pg_server, conn, EXTRA)
    before, counts = _snapshot(pg_server, conn, BEFORE), _counts(pg_server, conn)
    before["tb_adm_municipal"] = sorted((ap, ibge7(code)) for ap, code in before["tb_adm_municipal"])
    pec_double.migrate(conn, "5.5.28")
    return conn, before, counts


def test_every_row_survives_the_migration_with_the_same_content(pg_server, migrated):
    conn, before, counts = migrated
    assert _snapshot(pg_server, conn, AFTER) == before
    after = _counts(pg_server, conn)
    gone = {"tb_recurso", "tb_auditoria_evento"}
    assert set(counts) - set(after) == gone
    assert {t: n for t, n in after.items() if t in counts} == {t: n for t, n in counts.items() if t not in gone}
    assert after["tb_usuario"] >= 9 and after["tb_perfil_recurso"] > 0 and after["tb_adm_municipal"] == 2
    version = "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'"
    assert _query(pg_server, conn, version) == [["5.5.28"]]
    assert all(after[t] == 0 for t in ("ta_lotacao", "ta_ator_papel", "ta_ator_papel_perfil")), (
        "the migration's own changes must not be audited"
    )


def test_identity_and_profile_tables_have_the_5_5_columns_and_integer_flags(pg_server, migrated):
    conn = migrated[0]
    usuario = _columns(pg_server, conn, "tb_usuario")
    for flag in ("st_bloqueado", "st_forcar_troca_senha"):
        assert usuario[flag] == ("integer", False, "0")
    for table in ("tb_lotacao", "tb_unidade_saude", "tb_equipe", "tb_ator_papel"):
        assert _columns(pg_server, conn, table)["st_ativo"] == ("integer", False, "1"), table
    assert _columns(pg_server, conn, "tb_cidadao")["st_faleceu"][0] == "integer"
    booleans = _query(
        pg_server,
        conn,
        "SELECT table_name || '.' || column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND column_name LIKE 'st\\_%' AND data_type = 'boolean'",
    )
    assert booleans == []

    prof = _columns(pg_server, conn, "tb_prof")
    assert "no_profissional" not in prof
    assert prof["no_civil_profissional"][:2] == ("character varying", False)
    assert prof["no_social_profissional"][:2] == ("character varying", True)
    papel = _columns(pg_server, conn, "tb_ator_papel")
    assert "tp_ator_papel" not in papel and papel["no_tipo_ator_papel"][0] == "character varying"
    assert _columns(pg_server, conn, "tb_lotacao")["co_prof"][:2] == ("bigint", False)
    fks = _query(
        pg_server,
        conn,
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint WHERE contype = 'f'"
        " AND conrelid::regclass::text IN ('tb_lotacao', 'tb_adm_municipal')",
    )
    assert ["tb_lotacao", "tb_prof"] in fks and ["tb_adm_municipal", "tb_localidade"] in fks

    perfil = _columns(pg_server, conn, "tb_perfil")
    assert set(perfil) == {"co_seq_perfil", "no_perfil", "no_perfil_padrao", "type", "localidade", "situation"}
    assert perfil["situation"][0] == "integer" and perfil["localidade"][:2] == ("bigint", True)
    assert perfil["no_perfil_padrao"][:2] == ("character varying", True)
    assert set(_columns(pg_server, conn, "tb_perfil_recurso")) == {"co_perfil", "no_recurso", "tp_operacao"}
    assert set(_columns(pg_server, conn, "tb_adm_municipal")) == {"co_ator_papel", "co_localidade"}
    assert _columns(pg_server, conn, "tb_localidade") == {
        "co_localidade": ("bigint", False, None),
        "no_localidade_dbl": ("character varying", False, None),
        "co_ibge_dbl": ("character varying", False, None),
    }
    assert _columns(pg_server, conn, "tb_recurso") == {} and _columns(pg_server, conn, "tb_auditoria_evento") == {}


def test_localidade_ids_are_not_ibge_codes_and_every_unit_code_is_there_with_its_check_digit(pg_server, migrated):
    conn = migrated[0]
    rows = dict(_query(pg_server, conn, "SELECT co_ibge_dbl, co_localidade FROM tb_localidade"))
    assert rows["5300108"] == "5565", "530010 (the seed's Brasília) completes to 5300108"
    assert rows["5208707"] == "5330", "a 7-digit code already seeded is not added again"
    assert rows["4205407"] == "9001" and rows["4314902"] == "9002", "unseeded codes get the next ids above 9000"
    assert all(code != ibge for ibge, code in rows.items())
    assert all(re.fullmatch(r"\d{7}", ibge) for ibge in rows)
    missing = _query(
        pg_server,
        conn,
        "SELECT co_ibge_municipio FROM tb_unidade_saude u WHERE NOT EXISTS (SELECT 1 FROM tb_localidade t"
        " WHERE t.co_ibge_dbl = u.co_ibge_municipio OR left(t.co_ibge_dbl, 6) = u.co_ibge_municipio)",
    )
    assert missing == []


def test_defaults_are_the_named_profiles_and_inactive_ones_read_zero(pg_server, migrated):
    conn = migrated[0]
    rows = {
        name: (kind, situation, default)
        for name, kind, situation, default in _query(
            pg_server, conn, "SELECT no_perfil, type, situation, no_perfil_padrao FROM tb_perfil"
        )
    }
    assert rows["Médico"] == ("LOTACAO", "1", "Médico")
    assert rows["Administrador da instalação"] == ("ADMINISTRADOR_GERAL", "1", "Administrador da instalação")
    assert rows["Perfil Sintético"] == ("LOTACAO", "0", None)
    assert sum(1 for r in rows.values() if r[2]) == 26


def test_audit_triggers_write_the_shadow_tables_with_the_operation(pg_server, migrated):
    conn = migrated[0]
    _query(
        pg_server,
        conn,
        "UPDATE tb_lotacao SET st_ativo = 0 WHERE co_ator_papel = (SELECT min(co_ator_papel) FROM tb_lotacao);"
        "UPDATE tb_ator_papel SET st_ativo = 0 WHERE co_seq_ator_papel = (SELECT min(co_ator_papel) FROM tb_lotacao);"
        "DELETE FROM rl_ator_papel_perfil WHERE co_ator_papel = (SELECT min(co_ator_papel) FROM tb_lotacao);"
        "INSERT INTO rl_ator_papel_perfil SELECT min(co_ator_papel), 1 FROM tb_lotacao",
    )
    lotacao = _query(pg_server, conn, "SELECT tp_operacao_dbl, st_ativo, no_usuario_banco_dbl FROM ta_lotacao")
    assert lotacao == [["U", "0", pg_server["user"]]]
    assert _query(pg_server, conn, "SELECT tp_operacao_dbl, st_ativo FROM ta_ator_papel") == [["U", "0"]]
    assert [r[0] for r in _query(pg_server, conn, "SELECT tp_operacao_dbl FROM ta_ator_papel_perfil ORDER BY 1")] == [
        "D",
        "I",
    ]
    triggers = _query(
        pg_server,
        conn,
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text IN"
        " ('tb_lotacao', 'tb_ator_papel', 'rl_ator_papel_perfil') ORDER BY 1",
    )
    assert [t[0] for t in triggers] == ["audit_rl_ator_papel_perfil", "audit_tb_ator_papel", "audit_tb_lotacao"]
    for table, base in (("ta_lotacao", "tb_lotacao"), ("ta_ator_papel", "tb_ator_papel")):
        shadow = _columns(pg_server, conn, table)
        assert set(shadow) == set(_columns(pg_server, conn, base)) | {
            "dt_auditoria_dbl",
            "tp_operacao_dbl",
            "no_usuario_banco_dbl",
        }


@pytest.mark.parametrize(("code", "full"), [("530010", "5300108"), ("355030", "3550308"), ("431490", "4314902")])
def test_the_ibge_check_digit_of_the_test_is_the_published_one(code, full):
    assert ibge7(code) == full


def test_the_migration_is_one_transaction_in_postgresql_9_6_syntax():
    sql = re.sub(r"--[^\n]*", "", MIGRATION.read_text())
    for construct in ("COMMIT", "ROLLBACK", "BEGIN;", "GENERATED", "EXECUTE FUNCTION", "CREATE PROCEDURE", "CALL "):
        assert construct not in sql.upper(), construct
