"""The state-to-report contract: each concern's state file, as the producers write it and pec_info reads it
(pec_state.read_states), checked against its schema; a bad file is shown as what it is for its UBS, never as
"sem registro" nor as ok, and the report renders for every other UBS."""

from __future__ import annotations

import datetime
import json
import os

import pytest
from report_fixtures import SETTINGS, TODAY, healthy_pec, host

from ansible_collections.sesdf.esus.plugins.module_utils import report_model, report_output, report_states
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import read_states, state_path, write_state
from ansible_collections.sesdf.esus.plugins.module_utils.report_html import e

NOW = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)
PRODUCED = NOW - datetime.timedelta(hours=5)

# What each producer writes (roles/hardening, roles/upgrade, readiness, the maintenance job, the CNES import).
HARDENING = {
    "mode": "enforce",
    "summary": {"pass": 42, "fail": 0, "not_verifiable_here": 0},
    "failed": [],
    "not_verifiable_here": [],
    "findings": [],
}
UPGRADE = {
    "last": {"version": "4.5.2", "target_version": "4.5.2", "result": "at_target", "message": None, "soak": None},
    "history": [],
}
READINESS = {
    "verdict": "apta",
    "reasons": [],
    "measured_mbps": 52.3,
    "measured_at": "2026-11-28T10:00:00Z",
    "group": "ubs_aptas",
    "agrees": True,
}
MAINTENANCE = {
    "started_at": "2026-12-01T02:30:00-03:00",
    "finished_at": "2026-12-01T02:35:00-03:00",
    "result": "ok",
    "steps": {"disk": {"status": "ok"}, "vacuum": {"status": "adiado", "detail": "fora da janela"}},
}
CNES = {
    "last_import": {"date": "2026-11-29T06:00:00Z", "method": "api", "file": "XmlParaESUS31_530010.xml"},
    "pending_manual": None,
}


def facts_dir(tmp_path):
    """A server's facts directory with every concern recorded as its producer does."""
    facts = tmp_path / "facts"
    for concern, data in (("hardening", HARDENING), ("upgrade", UPGRADE), ("readiness", READINESS)):
        write_state(str(facts), concern, data, now=PRODUCED)
    (facts / "sesdf_esus_maintenance.fact").write_text(json.dumps(MAINTENANCE))
    (facts / "sesdf_esus_cnes.fact").write_text(json.dumps(CNES))
    return facts


def gathered(facts, uid=0):
    """pec_info's state of the directory; the test's files taken as root's (the test user wrote them)."""
    states = read_states(str(facts), now=NOW)
    for entry in states.values():
        if "uid" in entry:
            entry["uid"] = uid
    return states


def report(states):
    """The model of two UBS: this one and a healthy one; the pages, rendered."""
    pec = healthy_pec()
    pec["state"] = states
    hosts = [host("ubs-quebrada", pec=pec), host("ubs-boa", ubs="UBS Boa")]
    model = report_model.build(hosts, SETTINGS, TODAY)
    files = report_output.render_files(model)
    by_host = {r["host"]: r for r in model["rows"]}
    return by_host["ubs-quebrada"], by_host["ubs-boa"], files


def pendency(row, code):
    (found,) = [p for p in row["pendencias"] if p["code"] == code]
    return found


def assert_the_other_ubs_is_reported_as_usual(good, files):
    assert good["pendencias"] == [] and good["states"]["hardening"]["cell"].startswith("modo enforce: 42 ok")
    page = files["relatorio-regiao_norte-2026-12-01.html"]
    assert '<tr data-host="ubs-boa">' in page and '<tr data-host="ubs-quebrada">' in page


def test_the_records_as_the_producers_write_them_are_read_ok_with_their_day(tmp_path):
    row, _good, _files = report(gathered(facts_dir(tmp_path)))
    assert {name: s["status"] for name, s in row["states"].items() if s["present"]} == {
        "hardening": "ok",
        "maintenance": "ok",
        "cnes": "ok",
        "upgrade": "ok",
        "readiness": "ok",
    }
    assert row["states"]["maintenance"]["cell"] == "sem alarmes (01/12/2026)"
    assert row["pendencias"] == []


def test_the_upgrade_column_reads_the_upgrade_roles_own_record(tmp_path):
    """roles/upgrade records {last: {version, target_version, result: at_target}}: the cell says the version and that
    it is at the target, never '?: at_target'."""
    row, _good, _files = report(gathered(facts_dir(tmp_path)))
    assert row["states"]["upgrade"]["cell"] == "PEC 4.5.2: na versão alvo (01/12/2026)"


@pytest.mark.parametrize(
    ("concern", "write", "status", "field", "words"),
    [
        pytest.param(
            "maintenance",
            lambda f: f.write_text(json.dumps(dict(MAINTENANCE, finished_at=1764570900))),
            "tipo_errado",
            "finished_at",
            "finished_at: deveria ser data e hora, veio número",
            id="a date written as a number (the maintenance job's date)",
        ),
        pytest.param(
            "hardening",
            lambda f: f.write_text(json.dumps({"concern": "hardening", "produced_at": 20261201, "data": HARDENING})),
            "tipo_errado",
            "produced_at",
            "produced_at: deveria ser data e hora, veio número",
            id="a date written as a number (the envelope's)",
        ),
        pytest.param(
            "readiness",
            lambda f: write_state(str(f.parent), "readiness", dict(READINESS, measured_at=1764324000), now=PRODUCED),
            "tipo_errado",
            "measured_at",
            "measured_at: deveria ser data e hora (AAAA-MM-DDTHH:MM:SSZ), veio número",
            id="a date written as a number (in the data)",
        ),
        pytest.param(
            "hardening",
            lambda f: write_state(str(f.parent), "hardening", dict(HARDENING, summary=[42, 0]), now=PRODUCED),
            "tipo_errado",
            "summary",
            "summary: deveria ser objeto, veio lista",
            id="a list where an object belongs",
        ),
        pytest.param(
            "cnes",
            lambda f: f.write_text("[]"),
            "tipo_errado",
            "(documento)",
            "(documento): deveria ser objeto, veio lista",
            id="a list where the whole record belongs",
        ),
        pytest.param(
            "upgrade",
            lambda f: f.write_text(f.read_text()[:60]),
            "truncado",
            "",
            "truncado",
            id="truncated JSON",
        ),
        pytest.param("upgrade", lambda f: f.write_text(""), "truncado", "", "truncado (vazio", id="an empty file"),
        pytest.param(
            "hardening",
            lambda f: f.write_text('{"concern": "hardening", "data": {]}'),
            "ilegivel",
            "",
            "existe mas não pode ser lido",
            id="JSON that is not JSON",
        ),
        pytest.param(
            "readiness",
            lambda f: write_state(str(f.parent), "readiness", READINESS, now=NOW + datetime.timedelta(days=40)),
            "data_futura",
            "confirmed_at",
            "confirmed_at: 10/01/2027, depois do dia do relatório (01/12/2026)",
            id="a future date (the envelope's)",
        ),
        pytest.param(
            "cnes",
            lambda f: f.write_text(json.dumps({"last_import": dict(CNES["last_import"], date="2027-03-01T06:00:00Z")})),
            "data_futura",
            "last_import.date",
            "last_import.date: 01/03/2027",
            id="a future date (the CNES import's)",
        ),
        pytest.param(
            "hardening",
            lambda f: f.chmod(0o664),
            "nao_confiavel",
            "",
            "gravável pelo grupo, modo 0664",
            id="a group-writable file",
        ),
        pytest.param(
            "upgrade",
            lambda f: f.chmod(0o646),
            "nao_confiavel",
            "",
            "gravável por qualquer usuário, modo 0646",
            id="a world-writable file",
        ),
        pytest.param(
            "maintenance",
            lambda f: f.write_text(json.dumps(dict(MAINTENANCE, result="talvez"))),
            "tipo_errado",
            "result",
            "result: valor desconhecido 'talvez' (um de: alarme, erro, ok)",
            id="a value outside the vocabulary",
        ),
        pytest.param(
            "hardening",
            lambda f: (f.unlink(), f.mkdir()),
            "ilegivel",
            "",
            "existe mas não pode ser lido",
            id="a directory where the file belongs",
        ),
    ],
)
def test_a_bad_state_file_is_shown_as_such_for_its_ubs_and_the_others_render(
    tmp_path, concern, write, status, field, words
):
    facts = facts_dir(tmp_path)
    write(facts / os.path.basename(state_path(str(facts), concern)))
    row, good, files = report(gathered(facts))
    state = row["states"][concern]
    assert state["status"] == status and state["present"] and state["error"]
    label = report_states.RECORD[status]["label"]
    assert state["cell"] == (f"{label} ({field})" if status in ("tipo_errado", "data_futura") else label)
    assert state["cell"] not in ("sem registro", "") and "ok" not in state["cell"]
    found = pendency(row, "estado_" + status)
    assert words in found["msg"] and found["field"] == concern and found["due"]
    assert report_states.CONCERNS[concern].label in found["msg"]
    if status == "tipo_errado":
        assert field in found["msg"], "the field is named"
    # nothing of the bad record is read: no pendency from its content, and every other record still is
    assert [p["code"] for p in row["pendencias"]] == ["estado_" + status]
    assert all(s["status"] == "ok" for name, s in row["states"].items() if s["present"] and name != concern)
    assert_the_other_ubs_is_reported_as_usual(good, files)
    # the UBS's own page marks that concern's line red and says what to do there
    ubs = files["detalhe-2026-12-01/ubs-ubs-quebrada.html"]
    line = ubs.split(f'<tr data-concern="{concern}">')[1].split("</tr>")[0]
    assert f'<td class="due" data-field="{concern}">' in line and e(words) in line
    assert report_model.summary_lines(report_model.build([host("h")], SETTINGS, TODAY))


def test_a_file_owned_by_another_user_is_untrusted_and_never_read(tmp_path):
    facts = facts_dir(tmp_path)
    hardening = HARDENING | {"summary": {"pass": 30, "fail": 2}, "failed": ["firewall_rules", "ssh_config"]}
    write_state(str(facts), "hardening", hardening, now=PRODUCED)
    states = gathered(facts)
    states["hardening"]["uid"] = 1000
    row, good, _files = report(states)
    found = pendency(row, "estado_nao_confiavel")
    assert found["severity"] == "critica" and "dono uid 1000, não o root" in found["msg"]
    assert "chown root:root; chmod 0600" in found["msg"] and states["hardening"]["path"] in found["msg"]
    assert row["states"]["hardening"]["cell"] == "registro não confiável"
    assert "hardening" not in [p["code"] for p in row["pendencias"]], "the content of an untrusted file is not read"
    assert good["pendencias"] == []


def test_only_a_file_that_does_not_exist_is_sem_registro(tmp_path):
    facts = facts_dir(tmp_path)
    os.unlink(state_path(str(facts), "readiness"))
    row, _good, _files = report(gathered(facts))
    assert (
        row["states"]["readiness"]["cell"] == "sem registro" and row["states"]["readiness"]["status"] == "sem_registro"
    )
    assert row["pendencias"] == [], "a routine that never ran is no pendency of its own"


def test_a_server_with_no_state_file_at_all_says_so_once(tmp_path):
    (tmp_path / "facts").mkdir()
    row, _good, _files = report(gathered(tmp_path / "facts"))
    assert [p["code"] for p in row["pendencias"]] == ["sem_estado"]
    assert {s["cell"] for s in row["states"].values() if s["cell"]} == {"sem registro"}


def test_a_backup_status_with_a_date_written_as_a_number_is_named_not_sem_registro_nor_in_time():
    pec = healthy_pec()
    pec["backup_status"]["last_success"] = 1764468000
    pec["state"]["backup"] = {"present": True, "path": "/etc/ansible/facts.d/sesdf_esus_backup.fact", "uid": 0}
    model = report_model.build([host("h", pec=pec), host("g")], SETTINGS, TODAY)
    row = next(r for r in model["rows"] if r["host"] == "h")
    found = pendency(row, "estado_tipo_errado")
    assert found["field"] == "backup" and found["nt"] == "NT-inapta-4" and "last_success" in found["msg"]
    assert row["backup"]["record_cell"] == "registro com campo inválido (last_success)"
    assert (
        "backup" in row["red_fields"]
        and "em dia"
        not in report_output.render_files(model)["relatorio-regiao_norte-2026-12-01.html"]
        .split('data-host="h"')[1]
        .split("</tr>")[0]
    )
    assert next(r for r in model["rows"] if r["host"] == "g")["pendencias"] == []


def test_a_migration_record_under_way_has_no_date_and_that_is_no_error():
    """The migrate role records the flow's steps before the migration ends; its date comes with the end."""
    states = {"migration": {"present": True, "error": "no valid date", "error_kind": "date", "error_field": "date"}}
    states["migration"]["error_type"] = "NoneType"
    states["migration"]["data"] = {"steps": {"backup": "done"}}
    record = report_states.classify("migration", states["migration"], TODAY)
    assert record["status"] == "ok"
    states["migration"]["error_type"] = "int"
    record = report_states.classify("migration", states["migration"], TODAY)
    assert record["status"] == "tipo_errado" and record["field"] == "date"


def test_a_stamp_written_in_utc_late_in_the_evening_is_not_in_the_future():
    tomorrow_utc = {"present": True, "produced_at": "2026-12-02T01:30:00Z", "data": READINESS}
    assert report_states.classify("readiness", tomorrow_utc, TODAY)["status"] == "ok"
    two_days = dict(tomorrow_utc, produced_at="2026-12-03T01:30:00Z")
    assert report_states.classify("readiness", two_days, TODAY)["status"] == "data_futura"


@pytest.mark.parametrize("entry", [None, "x", [], {}, {"present": "sim"}, {"present": True, "data": "x"}, 3])
def test_classify_never_raises_and_never_says_ok_for_garbage(entry):
    record = report_states.classify("hardening", entry, TODAY)
    assert record["status"] == ("sem_registro" if entry is None else record["status"])
    assert entry is None or record["status"] not in ("ok", "desatualizado")


def test_every_concern_the_report_reads_has_a_contract_and_a_summary():
    assert set(report_model.CONCERNS) <= set(report_states.CONCERNS)
    assert set(report_model.STATE_READERS) <= set(report_model.CONCERNS)
    assert {"backup", "migration"} <= set(report_states.CONCERNS)
    # every record status has its Portuguese words, and every one that is not taken has a pendency
    for status, meta in report_states.RECORD.items():
        assert status == report_states.OK or meta["label"]
        assert (status in report_states.USABLE or status == report_states.MISSING) or (
            meta["severity"] and meta["why"] and meta["todo"]
        )


def test_one_ubs_whose_data_still_breaks_the_model_is_a_row_saying_so(monkeypatch):
    def broken(record, row, pend):
        if record["data"].get("measured_mbps") == 13.0:
            raise RuntimeError("boom")
        return {}

    monkeypatch.setitem(report_model.STATE_READERS, "readiness", broken)
    odd = healthy_pec()
    odd["state"]["readiness"]["data"]["measured_mbps"] = 13.0
    model = report_model.build([host("h", pec=odd), host("g")], SETTINGS, TODAY)
    files = report_output.render_files(model)
    rows = {r["host"]: r for r in model["rows"]}
    assert [p["code"] for p in rows["h"]["pendencias"]] == ["leitura_falhou"]
    assert "RuntimeError: boom" in rows["h"]["pendencias"][0]["msg"] and rows["h"]["role_label"] == "estado não lido"
    assert rows["g"]["pendencias"] == [] and '<tr data-host="g">' in files["relatorio-regiao_norte-2026-12-01.html"]
