"""manual_steps: a refusal becomes a pending manual step on the server; an operator's confirmation records who and
when, once; a rerun with the same confirmation changes nothing; bad confirmations are refused before any write."""

from __future__ import annotations

import datetime
import json
import os
import stat

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import manual_steps
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import read_states, state_path

T0 = datetime.datetime(2026, 12, 1, 20, 0, tzinfo=datetime.UTC)
T1 = datetime.datetime(2026, 12, 3, 9, 30, tzinfo=datetime.UTC)


def run(facts, now, check=False, **params):
    return manual_steps.run({"facts_dir": facts, **params}, check_mode=check, now=now)


def file_of(facts):
    path = state_path(facts, "manual_steps")
    with open(path, "rb") as handle:
        return path, handle.read(), os.stat(path).st_mtime_ns


@pytest.mark.nt("NT-apta-3")
def test_a_refused_capability_is_recorded_pending_with_its_id_and_ui_path(tmp_path):
    facts = str(tmp_path / "facts")
    out = run(facts, T0, refused=["transmission_off", "cnes_profile_reset_off"])
    assert out["changed"] is True
    assert [e["id"] for e in out["pending"]] == ["NT-apta-transmissao", "NT-cnes-perfis"]
    path, data, _mtime = file_of(facts)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    step = json.loads(data)["data"]["steps"]["NT-apta-transmissao"]
    assert step == {
        "id": "NT-apta-transmissao",
        "capability": "transmission_off",
        "descricao": "desligar a transmissão automática de lotes",
        "caminho": "Transmissão de dados → Configurações → desativar o envio automático",
        "status": "pendente",
        "solicitado_em": "2026-12-01T20:00:00Z",
        "confirmado_por": None,
        "confirmado_em": None,
    }
    # what pec_info (and so the report) reads: a state concern that is never stale
    state = read_states(facts, concerns=["manual_steps"])["manual_steps"]
    assert state["present"] and not state["stale"] and "NT-cnes-perfis" in state["data"]["steps"]


def test_the_same_refusal_again_changes_nothing(tmp_path):
    facts = str(tmp_path)
    run(facts, T0, refused=["transmission_off"])
    _path, data, mtime = file_of(facts)
    out = run(facts, T1, refused=["transmission_off"])
    assert out["changed"] is False and [e["id"] for e in out["pending"]] == ["NT-apta-transmissao"]
    assert file_of(facts)[1:] == (data, mtime), "a rerun rewrote the record"


def test_a_confirmation_records_who_and_when_and_a_second_run_with_it_changes_nothing(tmp_path):
    facts = str(tmp_path)
    run(facts, T0, refused=["transmission_off", "change_profiles"])
    confirmed = {"NT-apta-transmissao": "  Maria   Souza ", "NT-apta-perfis": "João da Silva"}
    out = run(facts, T1, refused=["transmission_off", "change_profiles"], confirmed=confirmed)
    assert out["changed"] is True and out["pending"] == []
    assert sorted(out["confirmed_now"]) == ["NT-apta-perfis", "NT-apta-transmissao"]
    step = out["steps"]["NT-apta-transmissao"]
    assert (step["status"], step["confirmado_por"], step["confirmado_em"]) == (
        "confirmado",
        "Maria Souza",
        "2026-12-03T09:30:00Z",
    )
    assert step["solicitado_em"] == "2026-12-01T20:00:00Z", "the request keeps its own time"
    _path, data, mtime = file_of(facts)
    later = T1 + datetime.timedelta(days=2)
    again = run(facts, later, refused=["transmission_off", "change_profiles"], confirmed=confirmed)
    assert again["changed"] is False and again["confirmed_now"] == [] and again["ignored"] == []
    assert file_of(facts)[1:] == (data, mtime)
    # another name later does not replace who confirmed it
    other = run(facts, later, confirmed={"NT-apta-transmissao": "Outra Pessoa"})
    assert other["changed"] is False and "already confirmed by Maria Souza" in other["ignored"][0]
    assert file_of(facts)[1] == data


def test_a_confirmation_given_with_the_request_is_recorded_in_the_same_run(tmp_path):
    out = run(str(tmp_path), T0, refused=["cnes_profile_reset_off"], confirmed={"NT-cnes-perfis": "Ana Lima"})
    step = out["steps"]["NT-cnes-perfis"]
    assert out["pending"] == [] and step["status"] == "confirmado" and step["confirmado_por"] == "Ana Lima"
    assert step["solicitado_em"] == step["confirmado_em"] == "2026-12-01T20:00:00Z"


@pytest.mark.parametrize(
    ("confirmed", "expected"),
    [
        ({"NT-apta-tramsissao": "Maria Souza"}, "unknown manual step NT-apta-tramsissao"),
        ({"transmission_off": "Maria Souza"}, "unknown manual step transmission_off"),
        ({"NT-apta-transmissao": "   "}, "has no name"),
        ({"NT-apta-transmissao": None}, "has no name"),
        ({"NT-apta-transmissao": "123.456.789-09"}, "looks like a CPF"),
        ({"NT-apta-transmissao": "12345678909"}, "looks like a CPF"),
    ],
)
def test_a_bad_confirmation_is_refused_clearly_and_nothing_is_recorded(tmp_path, confirmed, expected):
    facts = str(tmp_path)
    run(facts, T0, refused=["transmission_off"])
    _path, data, mtime = file_of(facts)
    with pytest.raises(PecError) as refused:
        run(facts, T1, refused=["transmission_off", "change_profiles"], confirmed=confirmed)
    assert expected in refused.value.msg and "nothing was recorded" in refused.value.msg
    assert file_of(facts)[1:] == (data, mtime), "a refused confirmation wrote the record"


def test_the_unknown_id_message_names_the_known_ones(tmp_path):
    with pytest.raises(PecError) as refused:
        run(str(tmp_path), T0, confirmed={"NT-x": "Maria Souza"})
    assert "NT-apta-perfis, NT-apta-transmissao, NT-cnes-perfis" in refused.value.msg
    assert not os.path.exists(state_path(str(tmp_path), "manual_steps"))


def test_a_confirmation_of_a_step_not_asked_here_is_ignored_not_recorded(tmp_path):
    out = run(str(tmp_path), T0, confirmed={"NT-apta-perfis": "Maria Souza"})
    assert out["changed"] is False and out["steps"] == {}
    assert "no such manual step was asked on this server" in out["ignored"][0]
    assert not os.path.exists(state_path(str(tmp_path), "manual_steps"))


def test_check_mode_reports_and_writes_nothing(tmp_path):
    out = run(str(tmp_path), T0, check=True, refused=["change_profiles"])
    assert out["changed"] is True and out["pending"][0]["id"] == "NT-apta-perfis"
    assert not os.path.exists(state_path(str(tmp_path), "manual_steps"))


def test_a_ui_path_given_by_the_inventory_replaces_the_default_for_a_new_step(tmp_path):
    out = run(str(tmp_path), T0, refused=["transmission_off"], paths={"NT-apta-transmissao": "Outro → Caminho"})
    assert out["steps"]["NT-apta-transmissao"]["caminho"] == "Outro → Caminho"
    with pytest.raises(PecError, match="unknown manual step NT-y"):
        run(str(tmp_path), T0, paths={"NT-y": "x"})


def test_an_unreadable_record_is_never_overwritten(tmp_path):
    facts = str(tmp_path)
    path = state_path(facts, "manual_steps")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('{"concern": "manual_steps", "data": {"steps": ["x"]}, "produced_at": "2026-12-01T20:00:00Z"}')
    with pytest.raises(PecError, match="unknown layout; nothing was changed"):
        run(facts, T0, refused=["transmission_off"])
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    with pytest.raises(PecError):
        run(facts, T0, refused=["transmission_off"])
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == "{not json"


def test_what_a_check_says_of_a_confirmed_a_pending_and_no_step():
    steps = manual_steps.update({}, ["transmission_off"], {"NT-apta-transmissao": "Maria Souza"}, now=T1)[0]
    assert manual_steps.check_text(steps["NT-apta-transmissao"]) == (
        "confirmado manualmente por Maria Souza em 03/12/2026 (não verificável automaticamente)"
    )
    pending = manual_steps.update({}, ["cnes_profile_reset_off"], now=T0)[0]["NT-cnes-perfis"]
    assert manual_steps.check_text(pending).startswith("passo manual NT-cnes-perfis pendente desde 01/12/2026: no PEC")
    assert manual_steps.check_text(None).startswith("sem passo manual registrado")
    out = run("/nonexistent-never-written", T0, check=True, refused=["transmission_off"])
    assert out["by_capability"]["transmission_off"]["verificacao"].startswith("passo manual NT-apta-transmissao")
