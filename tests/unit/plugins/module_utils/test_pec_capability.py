# ruff: noqa: S608 (SQL built from the test's own constants)
"""pec_capability: the capability profile of a survey bundle says what the live probe (pec_compat.Probe) says on
the same schema, and pec_compat.matches_surveyed tells a live schema that differs from the surveyed one."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from survey_helpers import make_tree, pec_http, survey_params

from ansible_collections.sesdf.esus.plugins.filter.capability_profile import FilterModule
from ansible_collections.sesdf.esus.plugins.module_utils.pec_capability import NOT_SURVEYED, capability_profile
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import (
    CAPABILITIES,
    INT,
    Probe,
    matches_surveyed,
    missing_in_schema,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_survey import gather

# Changes of a schema, each one a reason for some capability to be refused (or not).
RESHAPES = {
    "as_is": "",
    "dropped_column": "ALTER TABLE tb_lote_transp DROP COLUMN dt_envio",
    "retyped_column": "ALTER TABLE tb_dado_transp ALTER COLUMN ds_dado TYPE text USING encode(ds_dado, 'hex')",
    "renamed_column": "ALTER TABLE rl_ator_papel_perfil RENAME COLUMN co_perfil TO co_perfil_acesso",
    "key_added": "INSERT INTO tb_config_sistema VALUES ('ATUALIZAR_PERFIS_IMPORTACAO_CNES', 'false')",
    "key_removed": "DELETE FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'",
    "situation_renamed": "UPDATE tb_situacao_lote_transp SET no_situacao = 'TRANSMITIDO' WHERE no_situacao = 'ENVIADO'",
    "unknown_version": "UPDATE tb_config_sistema SET ds_texto = '5.5.28' WHERE co_config_sistema = 'VERSAOBANCODADOS'",
    "no_version": "DELETE FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'",
}


def alter(pg_server, conn, sql):
    if sql:
        with PgClient(pg_server["bin_dir"], conn) as client:
            client.query(sql)


def survey_bundle(pg_server, conn, tmp_path):
    root = make_tree(tmp_path / "opt", conn, pg_server["bin_dir"])
    bundle, _executed = gather(survey_params(root), "ubs-teste", http_get_fn=pec_http())
    assert bundle["errors"] == [], bundle["errors"]
    return bundle


def live(pg_server, conn):
    with PgClient(pg_server["bin_dir"], conn) as client:
        probe = Probe(client, trust="double")
        return {name: probe.check(name) for name in CAPABILITIES}, probe.columns()


def same_verdicts(profile, verdicts):
    for name, verdict in verdicts.items():
        assert profile["capabilities"][name] == {k: verdict[k] for k in ("supported", "missing", "profile")}, name


@pytest.mark.parametrize("reshape", sorted(RESHAPES))
def test_the_profile_says_what_the_live_probe_says_on_the_old_shape(pg_server, pec_db, tmp_path, reshape):
    alter(pg_server, pec_db, RESHAPES[reshape])
    profile = capability_profile(survey_bundle(pg_server, pec_db, tmp_path))
    verdicts, _columns = live(pg_server, pec_db)
    same_verdicts(profile, verdicts)
    if reshape == "as_is":
        assert {n for n, v in profile["capabilities"].items() if v["supported"]} == set(CAPABILITIES) - {
            "cnes_profile_reset_off"
        }


@pytest.mark.parametrize("version", ["4.5.2", "5.5.28", None])
def test_the_profile_says_what_the_live_probe_says_on_the_real_shape(pg_server, pec_strict_db, tmp_path, version):
    if version:
        alter(
            pg_server,
            pec_strict_db,
            f"UPDATE tb_config_sistema SET ds_texto = '{version}' WHERE co_config_sistema = 'VERSAOBANCODADOS'",
        )
    else:
        alter(pg_server, pec_strict_db, "DELETE FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'")
    bundle = survey_bundle(pg_server, pec_strict_db, tmp_path)
    profile = capability_profile(bundle)
    verdicts, _columns = live(pg_server, pec_strict_db)
    same_verdicts(profile, verdicts)
    assert not profile["capabilities"]["create_lotes"]["supported"]
    if version == "4.5.2":
        assert profile["capabilities"]["create_lotes"]["missing"] == ["table tb_situacao_lote_transp"]
        assert profile["capabilities"]["transmission_off"]["missing"] == [
            "key TRANSMISSAO_AUTOMATICA in tb_config_sistema"
        ]


def test_the_profile_of_the_real_shape_names_its_transmission(pg_server, pec_strict_db, tmp_path):
    bundle = survey_bundle(pg_server, pec_strict_db, tmp_path)
    profile = capability_profile(bundle)
    assert profile["format"] == 1 and profile["pec_version"] == "4.5.2"
    assert profile["source"] == f"survey {bundle['surveyed_at']}, PEC 4.5.2"
    transmission = profile["transmission"]
    assert [n["no_nodo"] for n in transmission["nodes"]] == ["Centralizador Nacional", "Centralizadora Municipal"]
    assert [s["no_situacao"] for s in transmission["node_situations"]] == ["PENDENTE", "ENVIADO", "ERRO"]
    assert transmission["tables_absent"] == ["tb_situacao_lote_transp"] and transmission["lote_situations"] == []
    assert "tb_lote_transp_nodo" in transmission["tables_present"]
    assert "tb_situacao_lote_transp" not in profile["tables"] and "tb_nodo" in profile["tables"]
    assert profile["tables"]["tb_nodo"]["no_nodo"] == "character varying"
    assert "LINKINSTALACAO" in profile["config_keys"] and "TRANSMISSAO_AUTOMATICA" not in profile["config_keys"]


def test_the_old_shape_has_no_node_tables(pg_server, pec_db, tmp_path):
    transmission = capability_profile(survey_bundle(pg_server, pec_db, tmp_path))["transmission"]
    assert transmission["lote_situations"] == ["ENVIADO", "ERRO_ENVIO", "GERADO"]
    assert transmission["nodes"] == [] and "tb_nodo" in transmission["tables_absent"]
    assert transmission["tables_present"] == ["tb_dado_transp", "tb_lote_transp", "tb_situacao_lote_transp"]


def test_the_surveyed_situation_names_can_be_given(pg_server, pec_db, tmp_path):
    alter(pg_server, pec_db, RESHAPES["situation_renamed"])
    bundle = survey_bundle(pg_server, pec_db, tmp_path)
    assert capability_profile(bundle)["capabilities"]["mark_lotes_sent"]["missing"] == [
        "situation 'ENVIADO' in tb_situacao_lote_transp"
    ]
    renamed = capability_profile(bundle, situations={"sent": "TRANSMITIDO"})
    assert renamed["capabilities"]["mark_lotes_sent"]["supported"] is True


def test_a_live_schema_like_the_surveyed_one_matches_and_a_changed_one_says_where(pg_server, pec_db, tmp_path):
    profile = capability_profile(survey_bundle(pg_server, pec_db, tmp_path))
    _verdicts, columns = live(pg_server, pec_db)
    assert all(matches_surveyed(name, profile, columns) == [] for name in CAPABILITIES)
    alter(
        pg_server,
        pec_db,
        "ALTER TABLE tb_lote_transp ALTER COLUMN qt_registros TYPE bigint, DROP COLUMN dt_envio,"
        " ADD COLUMN ds_protocolo_envio varchar(100); DROP TABLE tb_situacao_lote_transp CASCADE",
    )
    _verdicts, columns = live(pg_server, pec_db)
    assert matches_surveyed("mark_lotes_sent", profile, columns) == [
        "column tb_lote_transp.ds_protocolo_envio only in the live schema",
        "column tb_lote_transp.dt_envio only in the surveyed schema",
        "column tb_lote_transp.qt_registros is bigint (the survey saw integer)",
        "table tb_situacao_lote_transp only in the surveyed schema",
    ]
    assert matches_surveyed("change_profiles", profile, columns) == []


def test_a_table_the_survey_did_not_see_is_a_difference():
    surveyed = {"tables": {"tb_config_sistema": {"co_config_sistema": "character varying", "ds_texto": "text"}}}
    assert matches_surveyed("transmission_off", surveyed, dict(surveyed["tables"])) == []
    assert matches_surveyed("create_lotes", surveyed, {"tb_lote_transp": {"co_seq_lote_transp": "bigint"}}) == [
        "table tb_lote_transp only in the live schema"
    ]


def test_missing_in_schema_names_tables_columns_and_types():
    profile = {"tables": {"tb_a": {"co_a": INT, "ds_b": None}, "tb_c": {"co_c": INT}}}
    assert missing_in_schema(profile, {"tb_a": {"co_a": "bigint", "ds_b": "jsonb"}, "tb_c": {"co_c": "integer"}}) == []
    assert missing_in_schema(profile, {"tb_a": {"co_a": "text"}}) == [
        "column tb_a.co_a of type smallint/integer/bigint/numeric (it is text)",
        "column tb_a.ds_b",
        "table tb_c",
    ]


def test_a_bundle_without_the_database_supports_nothing_and_says_why():
    bundle = {"format": 1, "surveyed_at": "2026-12-01T00:00:00Z", "pec": {"version": "4.5.2"}, "schema": {}}
    profile = capability_profile(bundle)
    assert profile["database_surveyed"] is False and profile["tables"] == {}
    assert profile["transmission"]["tables_absent"] == [], "absent is not known when nothing was read"
    assert all(
        v == {"supported": False, "missing": [NOT_SURVEYED], "profile": None} for v in profile["capabilities"].values()
    )


def test_the_filter_gives_the_profile_and_refuses_what_is_not_a_bundle():
    apply = FilterModule().filters()["capability_profile"]
    bundle = {"format": 1, "surveyed_at": "t", "pec": {}, "schema": {}}
    assert apply(bundle) == capability_profile(bundle)
    assert apply(bundle)["source"] == "survey t, PEC of unknown version"
    with pytest.raises(AnsibleFilterError, match="format 2 is not supported"):
        apply(dict(bundle, format=2))
    with pytest.raises(AnsibleFilterError, match="not a survey bundle"):
        apply({"pec": {}})


# The probe's trust: with "survey" (the default) a write rests on a survey of a real server, never on the double's
# built-in profile alone.


def verdicts(pg_server, conn, trust="survey", surveyed=None):
    with PgClient(pg_server["bin_dir"], conn) as client:
        probe = Probe(client, trust=trust, surveyed=surveyed)
        return {name: probe.check(name) for name in CAPABILITIES}


def test_without_a_survey_no_write_rests_on_the_doubles_profile(pg_server, pec_db):
    double = verdicts(pg_server, pec_db, trust="double")
    survey = verdicts(pg_server, pec_db)
    assert double["change_profiles"]["supported"] and double["create_lotes"]["supported"]
    assert not any(v["supported"] for v in survey.values())
    refused = survey["change_profiles"]
    assert "no survey of a real PEC of this version matches" in refused["reason"]
    assert "Nothing was changed" in refused["reason"] and refused["manual"] in refused["reason"]
    # what the double's profile lacks is still named first (a survey would not make it supported)
    assert survey["cnes_profile_reset_off"]["missing"] == double["cnes_profile_reset_off"]["missing"]


def test_a_survey_of_this_schema_and_version_lets_the_write_through_and_a_changed_schema_does_not(
    pg_server, pec_db, tmp_path
):
    profile = capability_profile(survey_bundle(pg_server, pec_db, tmp_path))
    trusted = verdicts(pg_server, pec_db, surveyed=[profile])
    assert trusted["change_profiles"]["supported"] and trusted["change_profiles"]["surveyed"] == profile["source"]
    other_version = dict(profile, pec_version="4.5.5")
    assert not verdicts(pg_server, pec_db, surveyed=[other_version])["change_profiles"]["supported"]
    alter(pg_server, pec_db, RESHAPES["renamed_column"])
    alter(pg_server, pec_db, "ALTER TABLE rl_ator_papel_perfil RENAME COLUMN co_perfil_acesso TO co_perfil")
    alter(pg_server, pec_db, "ALTER TABLE tb_perfil ADD COLUMN st_novo integer")  # the live schema moved on
    moved = verdicts(pg_server, pec_db, surveyed=[profile])["change_profiles"]
    assert not moved["supported"] and "tb_perfil.st_novo only in the live schema" in moved["reason"]
