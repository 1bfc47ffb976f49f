# ruff: noqa: S608 (SQL built from this file's own constants)
"""pec_profiles against a real PostgreSQL loaded with the PEC test double's schema (tests/pec_double/sql)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_profiles import run

VIEW = "Visualização de prontuário"
BREAK_GLASS = "00000000272"
INSTALL_ADMIN = "00000000191"

# Every assignment, administrator row and grant: what a user of the PEC would see change.
ASSIGNMENTS = (
    "SELECT u.ds_login, ap.tp_ator_papel, coalesce(us.nu_cnes, '-'), coalesce(string_agg(pf.no_perfil, ',' ORDER BY"
    " pf.no_perfil), ''), (g.co_ator_papel IS NOT NULL)::text, coalesce(m.co_ibge_municipio, '-')"
    " FROM tb_ator_papel ap JOIN tb_prof p ON p.co_seq_prof = ap.co_prof"
    " JOIN tb_usuario u ON u.co_seq_usuario = p.co_usuario"
    " LEFT JOIN tb_lotacao l ON l.co_ator_papel = ap.co_seq_ator_papel"
    " LEFT JOIN tb_unidade_saude us ON us.co_seq_unidade_saude = l.co_unidade_saude"
    " LEFT JOIN rl_ator_papel_perfil r ON r.co_ator_papel = ap.co_seq_ator_papel"
    " LEFT JOIN tb_perfil pf ON pf.co_seq_perfil = r.co_perfil"
    " LEFT JOIN tb_adm_geral g ON g.co_ator_papel = ap.co_seq_ator_papel"
    " LEFT JOIN tb_adm_municipal m ON m.co_ator_papel = ap.co_seq_ator_papel"
    " GROUP BY ap.co_seq_ator_papel, u.ds_login, ap.tp_ator_papel, us.nu_cnes, g.co_ator_papel, m.co_ibge_municipio"
    " ORDER BY ap.co_seq_ator_papel"
)


def _params(tmp_path, **over):
    params = {
        "profile_name": VIEW,
        "profile_type": "LOTACAO",
        "profile_resources": ["PRONTUARIO", "CIDADAO"],
        "profile_operations": ["VISUALIZAR"],
        "break_glass_login": BREAK_GLASS,
        "snapshot_dir": str(tmp_path / "snapshots"),
        "schema_trust": "double",  # the full double's schema
    }
    params.update(over)
    return params


def _client(pg_server, conn):
    return PgClient(pg_server["bin_dir"], conn)


def _run(pg_server, conn, params, check_mode=False):
    with _client(pg_server, conn) as client:
        return run(client, conn, params, check_mode)


def _rows(pg_server, conn, sql=ASSIGNMENTS):
    with _client(pg_server, conn) as client:
        return client.query(sql)


def _snapshots(tmp_path):
    folder = tmp_path / "snapshots"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.nt("NT-apta-3")
def test_everyone_ends_view_only_admins_removed_break_glass_untouched(pg_server, pec_db, tmp_path):
    before = _rows(pg_server, pec_db)
    result = _run(pg_server, pec_db, _params(tmp_path))
    assert result["changed"] is True
    after = _rows(pg_server, pec_db)
    for (login, tp, cnes, profiles, geral, municipal), old in zip(after, before, strict=True):
        if login == BREAK_GLASS:
            assert [login, tp, cnes, profiles, geral, municipal] == old, "break-glass account must be left as it was"
        elif tp == "LOTACAO":
            assert profiles == VIEW, f"{login} lotação in {cnes} still has {profiles}"
        else:
            assert (profiles, geral, municipal) == ("", "false", "-"), f"{login} still administers: {tp}"
    # the ACS's two lotações, the receptionist without profile, and the manager's lotação are all view-only
    assert result["lotacoes_view_only"] == 6
    assert result["professionals_view_only"] == 5
    assert result["admin_roles_removed"] == 2
    grants = _rows(
        pg_server,
        pec_db,
        "SELECT rc.no_recurso, pr.tp_operacao FROM tb_perfil_recurso pr JOIN tb_recurso rc USING (co_recurso)"
        f" JOIN tb_perfil pf ON pf.co_seq_perfil = pr.co_perfil WHERE pf.no_perfil = '{VIEW}' ORDER BY 1, 2",
    )
    assert grants == [["CIDADAO", "VISUALIZAR"], ["PRONTUARIO", "VISUALIZAR"]]


def test_second_run_changes_nothing_and_writes_no_snapshot(pg_server, pec_db, tmp_path):
    _run(pg_server, pec_db, _params(tmp_path))
    first = _rows(pg_server, pec_db)
    assert len(_snapshots(tmp_path)) == 1
    again = _run(pg_server, pec_db, _params(tmp_path))
    assert again["changed"] is False
    assert again["removed_assignments"] == again["added_assignments"] == again["admin_roles_removed"] == 0
    assert again["professionals_view_only"] == 5, "the count the migration notice reports must survive a rerun"
    assert _rows(pg_server, pec_db) == first
    assert len(_snapshots(tmp_path)) == 1


def test_check_mode_reports_changes_but_touches_nothing(pg_server, pec_db, tmp_path):
    before = _rows(pg_server, pec_db)
    result = _run(pg_server, pec_db, _params(tmp_path), check_mode=True)
    assert result["changed"] is True
    assert result["removed_assignments"] > 0
    assert _rows(pg_server, pec_db) == before
    assert _rows(pg_server, pec_db, f"SELECT count(*) FROM tb_perfil WHERE no_perfil = '{VIEW}'") == [["0"]]
    assert _snapshots(tmp_path) == []


def _prof(pg_server, pec_db, login):
    """How the result names the professional with this login: by the PEC's tb_prof id."""
    rows = _rows(
        pg_server,
        pec_db,
        "SELECT p.co_seq_prof FROM tb_prof p JOIN tb_usuario u ON u.co_seq_usuario = p.co_usuario"
        f" WHERE u.ds_login = '{login}'",
    )
    return f"profissional {rows[0][0]}"


def test_diff_shows_each_professional_before_and_after_by_id_never_cpf_or_name(pg_server, pec_db, tmp_path):
    result = _run(pg_server, pec_db, _params(tmp_path), check_mode=True)
    diff = result["diff"]
    nurse = _prof(pg_server, pec_db, "22222222222")
    before = diff["before"]["professionals"][nurse]
    after = diff["after"]["professionals"][nurse]
    assert list(before.values()) == [["Digitador", "Enfermeiro"]]
    assert list(after.values()) == [[VIEW]]
    admin_after = diff["after"]["professionals"][_prof(pg_server, pec_db, INSTALL_ADMIN)]
    assert list(admin_after.values()) == [[]]
    glass = _prof(pg_server, pec_db, BREAK_GLASS)
    assert diff["before"]["professionals"][glass] == diff["after"]["professionals"][glass]
    assert nurse in result["changed_professionals"]
    text = json.dumps(result, ensure_ascii=False)
    for personal in ("22222222222", INSTALL_ADMIN, BREAK_GLASS, "Enfermeiro Sintético", "Acesso de Emergência"):
        assert personal not in text, f"{personal} is in the module's result"


def test_snapshot_is_root_only_lists_removals_and_its_sql_reverses_the_change(pg_server, pec_db, tmp_path):
    before = _rows(pg_server, pec_db)
    result = _run(pg_server, pec_db, _params(tmp_path))
    path = result["snapshot"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(path, encoding="utf-8") as handle:
        snap = json.load(handle)
    removed = {(r["ds_login"], r["no_perfil"]) for r in snap["removed"]["rl_ator_papel_perfil"]}
    assert ("22222222222", "Digitador") in removed and ("22222222222", "Enfermeiro") in removed
    assert ("00000000191", "Administrador da instalação") in removed
    assert not any(login == BREAK_GLASS for login, _profile in removed)
    assert len(snap["removed"]["tb_adm_geral"]) == 1 and len(snap["removed"]["tb_adm_municipal"]) == 1
    assert "password" not in json.dumps(snap).lower()
    with _client(pg_server, pec_db) as client:
        client.query(snap["restore_sql"])
    assert _rows(pg_server, pec_db) == before, "restore_sql of the snapshot must bring back every assignment"


def test_existing_profile_with_edit_grant_is_reduced_to_view_only(pg_server, pec_db, tmp_path):
    with _client(pg_server, pec_db) as client:
        client.query(
            f"INSERT INTO tb_perfil (no_perfil, tp_perfil, st_ativo) VALUES ('{VIEW}', 'LOTACAO', false);"
            "INSERT INTO tb_perfil_recurso SELECT currval('tb_perfil_co_seq_perfil_seq'), co_recurso, 'EDITAR'"
            " FROM tb_recurso WHERE no_recurso IN ('PRONTUARIO', 'CDS')"
        )
    result = _run(pg_server, pec_db, _params(tmp_path))
    assert result["profile"]["created"] is False
    rows = _rows(
        pg_server,
        pec_db,
        "SELECT pf.st_ativo::text, string_agg(rc.no_recurso || '/' || pr.tp_operacao, ',' ORDER BY 1)"
        " FROM tb_perfil pf JOIN tb_perfil_recurso pr ON pr.co_perfil = pf.co_seq_perfil JOIN tb_recurso rc USING"
        f" (co_recurso) WHERE pf.no_perfil = '{VIEW}' GROUP BY pf.st_ativo",
    )
    assert rows == [["true", "CIDADAO/VISUALIZAR,PRONTUARIO/VISUALIZAR"]]


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"break_glass_login": "99999999999"}, "break-glass account '99999999999' not found"),
        ({"break_glass_login": "11111111111"}, "is not an administrator"),
        ({"profile_resources": ["PRONTUARIO", "NAO_EXISTE"]}, "NAO_EXISTE not found in tb_recurso"),
        ({"profile_operations": []}, "must not be empty"),
    ],
)
def test_bad_input_fails_before_any_change(pg_server, pec_db, tmp_path, over, message):
    before = _rows(pg_server, pec_db)
    with pytest.raises(PecError, match=message):
        _run(pg_server, pec_db, _params(tmp_path, **over))
    assert _rows(pg_server, pec_db) == before
    assert _snapshots(tmp_path) == []


def test_change_between_read_and_write_rolls_back_everything(pg_server, pec_db, tmp_path):
    before_profiles = _rows(pg_server, pec_db, "SELECT count(*) FROM tb_perfil")
    with _client(pg_server, pec_db) as client:
        real_query = client.query

        def racing_query(sql, *args, **kwargs):
            if sql.startswith("BEGIN"):
                # someone (the PEC UI, a CNES import) adds a profile right after our read
                with _client(pg_server, pec_db) as other:
                    other.query(
                        "INSERT INTO rl_ator_papel_perfil SELECT l.co_ator_papel, pf.co_seq_perfil FROM tb_lotacao l,"
                        " tb_perfil pf WHERE pf.no_perfil = 'Farmacêutico' ORDER BY 1 LIMIT 1"
                    )
            return real_query(sql, *args, **kwargs)

        client.query = racing_query
        with pytest.raises(PecError, match="changed while this task ran.*nothing was changed: rerun"):
            run(client, pec_db, _params(tmp_path), False)
    after = _rows(pg_server, pec_db)
    assert any("Farmacêutico" in row[3] for row in after), "the concurrent change is kept"
    assert not any(VIEW in row[3] for row in after), "no view-only assignment from the rolled-back transaction"
    assert _rows(pg_server, pec_db, "SELECT count(*) FROM tb_perfil") == before_profiles, "no half-created profile"
    assert _rows(pg_server, pec_db, "SELECT count(*) FROM tb_adm_geral") == [["2"]]
    assert [n for n in _snapshots(tmp_path) if n.endswith(".aborted.json")], "the unused snapshot is marked aborted"
    # a rerun then completes
    assert _run(pg_server, pec_db, _params(tmp_path))["changed"] is True


def test_patient_data_untouched_and_queries_recorded(pg_server, pec_db, tmp_path):
    with _client(pg_server, pec_db) as client:
        result = run(client, pec_db, _params(tmp_path), False)
        executed = client.executed_queries
    assert _rows(pg_server, pec_db, "SELECT count(*) FROM tb_cidadao") == [["20"]]
    assert any(q.startswith("BEGIN") and "COMMIT" in q for q in executed), "the change is one transaction"
    assert result["snapshot"] and os.path.exists(result["snapshot"])
