# ruff: noqa: S608 (SQL built from the test's own constants)
"""The collection's reads of the PEC's identity and profile tables on the double's 4.5.5 schema and on its 5.5.28
one (tests/pec_double/sql/migrations/5.5.28.sql), with the same synthetic data: the same logical result on both, a
clear "não verificável" naming the column when a read's column is on neither, and every write refused on 5.5."""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import pec_profiles
from ansible_collections.sesdf.esus.plugins.module_utils.cnes_xml import parse_cnes
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import CAPABILITIES, CompatRefused
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_schema import LiveSchema, SchemaUnsupported
from ansible_collections.sesdf.esus.plugins.module_utils.profile_audit import (
    audit_profiles,
    central_audit,
    read_lotacoes,
)

VERSIONS = ("4.5.5", "5.5.28")
VIEW = pec_profiles.DEFAULT_PROFILE_NAME
CNES = "0010001"

# On the 4.5.5 schema, before the 5.5.28 migration runs on one of the two copies: an inactive lotação (the
# break-glass account's) and an inactive view-only profile with a view and an edit grant.
TWEAK = f"""
UPDATE tb_lotacao SET st_ativo = false WHERE co_ator_papel = (SELECT max(co_ator_papel) FROM tb_lotacao);
INSERT INTO tb_perfil (no_perfil, tp_perfil, st_ativo, st_padrao) VALUES ('{VIEW}', 'LOTACAO', false, false);
INSERT INTO tb_perfil_recurso (co_perfil, co_recurso, tp_operacao)
SELECT p.co_seq_perfil, r.co_recurso, v.op FROM tb_perfil p, tb_recurso r, (VALUES ('VISUALIZAR'), ('EDITAR')) v (op)
WHERE p.no_perfil = '{VIEW}' AND r.no_recurso = 'PRONTUARIO';
"""


def cnes_xml():
    """The synthetic UBS as NCAIS's file would place it: 44444444444 absent, 33333333333 only in this unit,
    55555555555 with another CBO (tests/unit/conftest.py SEED)."""
    profs = [
        ("11111111111", [(CNES, "225142")]),
        ("22222222222", [(CNES, "223565")]),
        ("33333333333", [(CNES, "515105")]),
        ("55555555555", [(CNES, "225142")]),
        ("00000000272", [(CNES, "225125")]),
    ]
    body = "".join(
        f'<DADOS_PROFISSIONAIS NM_PROF="Profissional Sintético {i}" CPF_PROF="{cpf}" CO_CNS=""><LOTACOES>'
        + "".join(f'<DADOS_LOTACOES CNES="{c}" CO_CBO="{b}" CO_INE=""/>' for c, b in places)
        + "</LOTACOES></DADOS_PROFISSIONAIS>"
        for i, (cpf, places) in enumerate(profs)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ImportarXMLCNES><IDENTIFICACAO DATA="2024-01-01" CO_IBGE_MUN="530010"'
        f' VERSAO_XSD="2.1"><ESTABELECIMENTOS><DADOS_GERAIS_ESTABELECIMENTOS CNES="{CNES}" NM_FANTA="UBS Teste"/>'
        f"</ESTABELECIMENTOS><PROFISSIONAIS>{body}</PROFISSIONAIS></IDENTIFICACAO></ImportarXMLCNES>"
    ).encode()


@pytest.fixture
def both(pg_server, pec_double):
    """{version: connection} of the same synthetic data on the double's 4.5.5 and 5.5.28 schemas."""
    dbs = {}
    for version in VERSIONS:
        conn = pec_double.create("4.5.5")
        with PgClient(pg_server["bin_dir"], conn) as client:
            client.query(TWEAK)
        pec_double.migrate(conn, version)
        dbs[version] = conn
    return dbs


@pytest.fixture
def pec55(both):
    return both["5.5.28"]


def _client(pg_server, conn):
    return PgClient(pg_server["bin_dir"], conn)


def _sql(pg_server, conn, sql):
    with _client(pg_server, conn) as client:
        return client.query(sql)


def dump(pg_server, conn):
    """Schema and data of the whole database, as pg_dump prints them (without pg_dump's per-run \\restrict key)."""
    with _client(pg_server, conn) as client:
        proc = subprocess.run(
            [client.tool("pg_dump"), "-w", "--no-owner", "-d", conn["name"]],
            capture_output=True,
            text=True,
            env=client.env(),
            check=True,
        )
    return "\n".join(line for line in proc.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def _params(tmp_path, **over):
    return {
        "profile_name": VIEW,
        "profile_type": pec_profiles.DEFAULT_PROFILE_TYPE,
        "profile_resources": list(pec_profiles.DEFAULT_RESOURCES),
        "profile_operations": list(pec_profiles.DEFAULT_OPERATIONS),
        "break_glass_login": "00000000272",
        "snapshot_dir": str(tmp_path / "snap"),
        "schema_trust": "double",
        **over,
    }


# ---------------------------------------------------------------------------------------------- same reads


def test_the_profile_audit_reads_the_same_lotacoes_and_finds_the_same_mismatches_on_both_schemas(pg_server, both):
    rows = {}
    for version, conn in both.items():
        with _client(pg_server, conn) as client:
            rows[version] = read_lotacoes(client)
    assert rows["4.5.5"] == rows["5.5.28"]
    assert len(rows["5.5.28"]) == 7 and sum(1 for r in rows["5.5.28"] if r["active"] is False) == 1
    assert {p["type"] for r in rows["5.5.28"] for p in r["profiles"]} == {"LOTACAO"}
    data = parse_cnes(cnes_xml(), CNES)
    found = {v: audit_profiles(data, r, include_inactive=True) for v, r in rows.items()}
    assert found["4.5.5"] == found["5.5.28"]
    assert {m["tipo"] for m in found["5.5.28"]} == {
        "profissional_ausente_do_cnes",
        "lotacao_em_outro_cnes",
        "cbo_divergente",
        "perfil_nao_permitido_para_cbo",
    }
    assert central_audit(data, rows["4.5.5"], CNES) == central_audit(data, rows["5.5.28"], CNES)


def test_the_profile_audit_module_gives_the_same_audit_on_both_schemas(pg_server, both, run_module, tmp_path):
    xml = tmp_path / "cnes.xml"
    xml.write_bytes(cnes_xml())
    audits = {}
    for version, conn in both.items():
        out = run_module("pec_profile_audit", conn, cnes_file=str(xml), cnes=CNES)[1]
        assert not out.get("failed"), out.get("msg")
        audits[version] = out["audit"]
    assert audits["4.5.5"] == audits["5.5.28"] and audits["5.5.28"]["counts"]["perfil_nao_permitido_para_cbo"] == 1
    # what the audit reports today about each professional, and nothing more: no column beyond these
    keys = {k for m in audits["5.5.28"]["mismatches"] for k in m}
    assert keys <= {"tipo", "cpf", "nome", "cnes", "cbo", "ator_papel", "perfil", "detalhe"}


def _logical(state):
    """read_state's answer without what names the same fact differently on each schema: the municipal
    administrator's município (IBGE code on 4.x, the PEC's internal id on 5.x) and the fingerprint's SQL."""
    papeis = [{**p, "adm_municipal": bool(p["adm_municipal"])} for p in state["papeis"]]
    return {**state, "papeis": papeis, "fingerprint": None, "fingerprint_sql": None}


def test_read_state_reads_the_same_assignments_profile_and_grants_on_both_schemas(pg_server, both):
    states = {}
    for version, conn in both.items():
        with _client(pg_server, conn) as client:
            states[version] = pec_profiles.read_state(client, VIEW, ["PRONTUARIO", "CIDADAO", "NAO_EXISTE"])
    assert _logical(states["4.5.5"]) == _logical(states["5.5.28"])
    new = states["5.5.28"]
    assert new["profile"]["type"] == "LOTACAO" and new["profile"]["active"] is False
    assert new["profile"]["grants"] == [("PRONTUARIO", "EDITAR"), ("PRONTUARIO", "VISUALIZAR")]
    assert new["resources"] == ["CIDADAO", "PRONTUARIO"]
    assert {p["type"] for p in new["papeis"]} == {"LOTACAO", "ADMINISTRADOR_GERAL", "ADMINISTRADOR_MUNICIPAL"}
    place = {v: [p["adm_municipal"] for p in s["papeis"] if p["adm_municipal"]] for v, s in states.items()}
    assert place == {"4.5.5": ["530010"], "5.5.28": ["5565"]}, "IBGE code on 4.x, tb_localidade's id on 5.x"
    plans = [
        pec_profiles.plan(s, VIEW, "LOTACAO", ["PRONTUARIO"], ["VISUALIZAR"], "00000000272") for s in states.values()
    ]
    assert plans[0]["changed_professionals"] == plans[1]["changed_professionals"]
    assert plans[0]["remove"] == plans[1]["remove"] and plans[0]["profile"] == plans[1]["profile"]


def test_the_fingerprint_on_5_5_is_stable_and_changes_with_an_assignment(pg_server, pec55):
    def fingerprint():
        with _client(pg_server, pec55) as client:
            return pec_profiles.read_state(client, VIEW, [])["fingerprint"]

    first = fingerprint()
    assert first and fingerprint() == first
    _sql(
        pg_server,
        pec55,
        "DELETE FROM rl_ator_papel_perfil WHERE co_perfil = (SELECT min(co_perfil) FROM rl_ator_papel_perfil)",
    )
    assert fingerprint() != first


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            "ALTER TABLE tb_prof RENAME COLUMN no_civil_profissional TO no_nome_x",
            "professional_name: column tb_prof.no_profissional or tb_prof.no_civil_profissional",
        ),
        ("ALTER TABLE tb_perfil RENAME COLUMN type TO tipo_x", "column tb_perfil.tp_perfil or tb_perfil.type"),
        ("ALTER TABLE tb_lotacao DROP COLUMN st_ativo", "lotacao_active: column tb_lotacao.st_ativo"),
        ("ALTER TABLE tb_prof DROP COLUMN nu_cns", "column tb_prof.nu_cns"),
        ("DROP TABLE rl_perfil_cbo_padrao", "table rl_perfil_cbo_padrao"),
    ],
)
def test_a_read_whose_column_is_on_neither_schema_names_it_and_reads_no_row(pg_server, pec55, change, named):
    _sql(pg_server, pec55, change)
    with _client(pg_server, pec55) as client, pytest.raises(SchemaUnsupported) as refused:
        read_lotacoes(client)
    assert named in refused.value.msg and "não verificável" in refused.value.msg
    assert refused.value.details["missing"]
    assert len(client.executed_queries) == 1 and "information_schema" in client.executed_queries[0]


def test_the_profile_audit_module_fails_naming_the_column_not_with_an_sql_error(pg_server, pec55, run_module, tmp_path):
    _sql(pg_server, pec55, "ALTER TABLE tb_prof RENAME COLUMN no_civil_profissional TO no_nome_x")
    xml = tmp_path / "cnes.xml"
    xml.write_bytes(cnes_xml())
    out = run_module("pec_profile_audit", pec55, cnes_file=str(xml), cnes=CNES)[1]
    assert out["failed"] is True and "tb_prof.no_civil_profissional" in out["msg"]
    assert "não verificável" in out["msg"] and "ERROR" not in out["msg"] and "Traceback" not in out["msg"]
    assert out["missing"]


def test_a_field_takes_the_first_alternative_the_live_schema_has(pg_server, both):
    sources = {}
    for version, conn in both.items():
        with _client(pg_server, conn) as client:
            resolved = LiveSchema(client).resolve("a test", ("grant_resource", "profile_active"))
        sources[version] = resolved.sources
        assert "::text IN ('1', 't', 'true')" in resolved.expr("profile_active", "x")
    assert sources["4.5.5"]["grant_resource"][0] == "tb_perfil_recurso.co_recurso"
    assert sources["5.5.28"] == {
        "grant_resource": ["tb_perfil_recurso.no_recurso"],
        "profile_active": ["tb_perfil.situation"],
    }


# ---------------------------------------------------------------------------------------------- writes refused


@pytest.mark.parametrize("check_mode", [True, False])
@pytest.mark.parametrize("trust", ["survey", "double"])
def test_the_profile_change_is_refused_on_5_5_with_the_manual_path_and_writes_nothing(
    pg_server, pec55, tmp_path, check_mode, trust
):
    before = dump(pg_server, pec55)
    with _client(pg_server, pec55) as client, pytest.raises(CompatRefused) as refused:
        pec_profiles.run(client, pec55, _params(tmp_path, schema_trust=trust), check_mode)
    assert "a schema profile for PEC 5.5.28" in refused.value.msg
    assert CAPABILITIES["change_profiles"]["manual"] in refused.value.msg
    with _client(pg_server, pec55) as client:
        skipped = pec_profiles.run(client, pec55, _params(tmp_path, schema_trust=trust, unsupported="skip"), check_mode)
    assert skipped["supported"] is False and skipped["changed"] is False
    assert dump(pg_server, pec55) == before and not (tmp_path / "snap").exists()


def test_the_profile_change_is_refused_on_the_5_5_columns_whatever_version_the_database_says(
    pg_server, pec55, tmp_path
):
    _sql(
        pg_server, pec55, "UPDATE tb_config_sistema SET ds_texto = '4.5.5' WHERE co_config_sistema = 'VERSAOBANCODADOS'"
    )
    before = dump(pg_server, pec55)
    with _client(pg_server, pec55) as client, pytest.raises(CompatRefused) as refused:
        pec_profiles.run(client, pec55, _params(tmp_path), False)
    for missing in ("column tb_ator_papel.tp_ator_papel", "column tb_perfil.tp_perfil", "table tb_recurso"):
        assert missing in refused.value.msg
    assert dump(pg_server, pec55) == before


@pytest.mark.parametrize("check", [True, False])
def test_the_profile_and_config_modules_refuse_on_5_5_and_write_nothing(pg_server, pec55, run_module, tmp_path, check):
    before = dump(pg_server, pec55)
    args = {"break_glass_login": "00000000272", "snapshot_dir": str(tmp_path / "snap"), "schema_trust": "double"}
    out = run_module("pec_profiles", pec55, check, **args)[1]
    assert out["failed"] is True and "Administração → Perfis" in out["msg"]
    out = run_module("pec_profiles", pec55, check, unsupported="skip", **args)[1]
    assert not out.get("failed") and out["supported"] is False and out["changed"] is False
    for capability in (None, "transmission_off", "cnes_profile_reset_off"):
        extra = {"capability": capability} if capability else {}
        out = run_module("pec_config", pec55, check, settings={"TREINAMENTO": "1"}, schema_trust="double", **extra)[1]
        assert out["failed"] is True and out["supported"] is False, capability
        assert "a schema profile for PEC 5.5.28" in out["msg"] and out["compat"]["manual"] in out["msg"]
    assert dump(pg_server, pec55) == before and not (tmp_path / "snap").exists()
