"""pec_state: one state file per concern; unchanged results change nothing; stale, missing and corrupt are told."""

from __future__ import annotations

import datetime
import json
import os
import stat

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import read_states, state_path, write_state

T0 = datetime.datetime(2026, 12, 1, 2, 0, tzinfo=datetime.UTC)


def at(hours):
    return T0 + datetime.timedelta(hours=hours)


def test_first_write_is_root_only_and_an_unchanged_result_within_the_hour_changes_nothing(tmp_path):
    facts = str(tmp_path / "facts")
    changed, before, after = write_state(facts, "hardening", {"fail": 1}, now=T0)
    path = state_path(facts, "hardening")
    assert changed and before is None and after["produced_at"] == "2026-12-01T02:00:00Z"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    mtime = os.stat(path).st_mtime_ns
    changed, _b, _a = write_state(facts, "hardening", {"fail": 1}, now=at(0.5))
    assert not changed and os.stat(path).st_mtime_ns == mtime
    changed, _b, after = write_state(facts, "hardening", {"fail": 1}, now=at(3))
    assert changed and after["produced_at"] == "2026-12-01T02:00:00Z"
    assert after["confirmed_at"] == "2026-12-01T05:00:00Z"
    changed, _b, after = write_state(facts, "hardening", {"fail": 0}, now=at(3.1))
    assert changed and after["produced_at"] == after["confirmed_at"] == "2026-12-01T05:06:00Z"


def test_check_mode_writes_nothing(tmp_path):
    facts = str(tmp_path / "facts")
    changed, _b, after = write_state(facts, "lotes", {"pending": 2}, now=T0, check_mode=True)
    assert changed and after["data"] == {"pending": 2} and not os.path.exists(state_path(facts, "lotes"))


def test_history_keeps_distinct_results_newest_first(tmp_path):
    facts = str(tmp_path)
    for i, result in enumerate(["upgraded", "upgraded", "failed", "current"]):
        write_state(facts, "upgrade", {"result": result}, now=at(2 * i), history=3)
    data = json.loads(open(state_path(facts, "upgrade")).read())["data"]
    assert data["last"] == {"result": "current"}
    assert data["history"] == [{"result": "failed"}, {"result": "upgraded"}]


def test_a_write_into_a_full_or_unwritable_directory_keeps_the_old_file(tmp_path, monkeypatch):
    facts = str(tmp_path)
    write_state(facts, "profiles", {"mismatches": 0}, now=T0)

    def full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.mkstemp", full)
    with pytest.raises(PecError, match="free space"):
        write_state(facts, "profiles", {"mismatches": 3}, now=at(2))
    assert json.loads(open(state_path(facts, "profiles")).read())["data"] == {"mismatches": 0}


def test_reader_tells_present_stale_missing_corrupt_and_legacy_layouts(tmp_path):
    facts = tmp_path
    write_state(str(facts), "hardening", {"fail": 0}, now=T0)
    write_state(str(facts), "readiness", {"verdict": "apta"}, now=at(-24 * 40))
    (facts / "sesdf_esus_profiles.fact").write_text("{truncated")
    (facts / "sesdf_esus_cnes.fact").write_text(json.dumps({"last_import": {"date": "2026-11-20T10:00:00Z"}}))
    (facts / "sesdf_esus_maintenance.fact").write_text(json.dumps({"result": "ok"}))
    states = read_states(str(facts), now=at(7), cadences={"cnes": 24 * 30})
    assert states["hardening"]["present"] and not states["hardening"]["stale"]
    assert states["hardening"]["age_hours"] == 7.0 and states["hardening"]["data"] == {"fail": 0}
    assert states["readiness"]["stale"] and states["readiness"]["cadence_hours"] == 768
    assert not states["lotes"]["present"] and not states["lotes"]["stale"]
    assert states["profiles"]["present"] and "unreadable" in states["profiles"]["error"]
    assert states["cnes"]["produced_at"] == "2026-11-20T10:00:00Z" and not states["cnes"]["stale"]
    assert states["maintenance"]["stale"] and "no valid date" in states["maintenance"]["error"]
    assert states["migration"]["cadence_hours"] is None


def test_reader_says_who_owns_each_file_and_why_one_cannot_be_taken_as_read(tmp_path):
    facts = tmp_path
    write_state(str(facts), "hardening", {"fail": 0}, now=T0)
    os.chmod(state_path(str(facts), "hardening"), 0o664)
    (facts / "sesdf_esus_upgrade.fact").write_text('{"concern": "upgrade", "produced_at": "2026-12-01T02:00:00Z", "da')
    (facts / "sesdf_esus_lotes.fact").write_text("")
    (facts / "sesdf_esus_profiles.fact").write_text('{"concern": "profiles", ]}')
    (facts / "sesdf_esus_readiness.fact").write_text("[1, 2]")
    (facts / "sesdf_esus_maintenance.fact").write_text(json.dumps({"result": "ok", "finished_at": 1764570900}))
    (facts / "sesdf_esus_manual_steps.fact").write_text(
        json.dumps({"concern": "manual_steps", "produced_at": 20261201, "data": {}})
    )
    states = read_states(str(facts), now=at(7))
    assert states["hardening"]["mode"] == "0664" and states["hardening"]["uid"] == os.getuid()
    assert "error" not in states["hardening"] and "uid" not in states["cnes"], "a missing file has no owner"
    assert (
        states["upgrade"]["error_kind"] == "truncated"
        and "ends before its JSON document does" in (states["upgrade"]["error"])
    )
    assert states["lotes"]["error_kind"] == "truncated" and "it is empty" in states["lotes"]["error"]
    assert states["profiles"]["error_kind"] == "unreadable" and "unreadable" in states["profiles"]["error"]
    assert states["readiness"]["error_kind"] == "not_object" and states["readiness"]["error_type"] == "list"
    assert (states["maintenance"]["error_kind"], states["maintenance"]["error_field"]) == ("date", "finished_at")
    assert states["maintenance"]["error_type"] == "int" and states["maintenance"]["data"]["result"] == "ok"
    assert (states["manual_steps"]["error_field"], states["manual_steps"]["error_type"]) == ("produced_at", "int")


def test_a_cnes_import_waiting_for_its_confirmation_is_dated_by_its_staging(tmp_path):
    pending = {"file": "XmlParaESUS31_530010.xml", "staged_at": "2026-11-30T06:00:00Z", "method": "api_nao_verificada"}
    (tmp_path / "sesdf_esus_cnes.fact").write_text(json.dumps({"last_import": None, "pending_manual": pending}))
    state = read_states(str(tmp_path), now=at(7))["cnes"]
    assert "error" not in state and state["produced_at"] == "2026-11-30T06:00:00Z"
