"""Retention on the backup host with a real borg: the "UBS" writes through ``borg serve --append-only`` (an SSH shim
runs the same forced command the backup host's authorized_keys line runs), the retention runs as the repository's
owner would. A UBS that deletes, replaces or back-dates archives stops the compaction with a critical finding, and
the documented rollback brings the archives back; a normal day prunes and compacts; check mode changes nothing."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess

import pytest
from borg_helpers import PASS, PREFIX, Ubs

from ansible_collections.sesdf.esus.plugins.module_utils import _borg, pec_state, report_model
from ansible_collections.sesdf.esus.plugins.module_utils import _borg_history as bh
from ansible_collections.sesdf.esus.plugins.module_utils import borg_retention as br
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

pytestmark = pytest.mark.skipif(shutil.which("borg") is None, reason="borg not installed on this machine")

NOW = datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def ubs(tmp_path):
    ubs = Ubs(tmp_path)
    ubs.init()
    return ubs


def params(ubs, tmp_path, **over):
    """The module's options as the role gives them (the passphrase read from the UBS)."""
    return {
        "repository": ubs.repo,
        "prefix": PREFIX,
        "passphrase": PASS,
        "keep_daily": 30,
        "keep_weekly": 0,
        "keep_monthly": 0,
        "base_dir": str(tmp_path / "backup-host-borg"),
        "ubs_base_dir": ubs.base,
        **over,
    }


def retention(ubs, tmp_path, check_mode=False, **over):
    return br.run(params(ubs, tmp_path, **over), check_mode=check_mode, now=NOW)


def backup_host_env(tmp_path):
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("BORG_")},
        "BORG_PASSPHRASE": PASS,
        "BORG_BASE_DIR": str(tmp_path / "backup-host-borg"),
    }


def backup_host_list(tmp_path, ubs):
    env = backup_host_env(tmp_path)
    out = subprocess.run(["borg", "list", "--short", ubs.repo], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split(), env


def snapshot(*paths):
    """Every file under the paths: (relative path, size, mtime_ns)."""
    files = set()
    for top in paths:
        if os.path.isfile(top):
            st = os.stat(top)
            files.add((top, st.st_size, st.st_mtime_ns))
        for root, _dirs, names in os.walk(top):
            for name in names:
                if name.startswith("lock"):
                    continue  # borg's lock files come and go with any read
                st = os.stat(os.path.join(root, name))
                files.add((os.path.join(root, name), st.st_size, st.st_mtime_ns))
    return files


def repo_bytes(ubs):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _d, fs in os.walk(os.path.join(ubs.repo, "data")) for f in fs)


# ------------------------------------------------------------------------------------ the UBS deletes an archive
@pytest.mark.nt("NT-inapta-4")
def test_an_archive_the_ubs_deleted_stops_the_compaction_is_named_critical_and_comes_back_by_the_rollback(
    ubs, tmp_path
):
    for day in (1, 2, 3):
        ubs.send(day)
    first = retention(ubs, tmp_path)
    assert first["status"] == "ok" and first["pruned"] == [], first
    day4 = ubs.send(4)
    victim = f"{PREFIX}diario-20260102T023000Z"
    ubs.delete(victim)
    assert victim not in ubs.names()
    segments = bh.segment_numbers(ubs.repo)

    found = retention(ubs, tmp_path, keep_daily=1)
    assert found["status"] == "critical" and found["critical"] is True
    assert found["pruned"] == [] and found["compacted"] is False, "nothing pruned, nothing compacted"
    (lost,) = found["finding"]["lost"]
    assert lost["name"] == victim and lost["how"] == "deleted"
    assert victim in found["msg"] and "rolled back to transaction" in found["msg"]
    assert found["finding"]["recoverable"] == [victim], "read on a scratch copy rolled back to that transaction"
    assert os.listdir(os.path.dirname(ubs.repo)) == [os.path.basename(ubs.repo), os.path.basename(found["state_path"])]
    assert bh.segment_numbers(ubs.repo) == segments, "every segment is still there: the deletion is reversible"
    report = found["report"]
    assert report["critical"] is True and report["lost"][0]["name"] == victim
    assert report["rollback_to"] == found["finding"]["rollback_to"]
    assert PASS not in json.dumps(found)

    # every run finds it again (and, the same day, changes nothing)
    again = retention(ubs, tmp_path, keep_daily=1)
    assert again["status"] == "critical" and again["changed"] is False and again["finding"] == found["finding"]

    # the rollback as docs/backup.md gives it, with the values the finding names, run on the backup host as the
    # borg user (whose borg finds the passphrase and base directory in its environment)
    env = backup_host_env(tmp_path)
    for step in found["procedure"]:
        if step["command"] and step["where"].startswith("backup host"):
            subprocess.run(["bash", "-c", step["command"]], check=True, capture_output=True, env=env)
    names, env = backup_host_list(tmp_path, ubs)
    assert victim in names and day4 in names, "the deleted archive is back; the day sent before the deletion stays"
    out = subprocess.run(
        ["borg", "extract", "--stdout", f"{ubs.repo}::{victim}"], env=env, capture_output=True, check=True
    )
    assert hashlib.sha256(out.stdout).hexdigest() == ubs.sent[victim], "the archive reads back whole"
    assert os.path.isdir(ubs.repo.rstrip("/") + ".before-rollback"), "the repository as it was is kept"

    # the UBS, its own step done, sends again; the retention resumes: nothing found, prunes and compacts
    (ubs_step,) = [s for s in found["procedure"] if s["where"].startswith("UBS")]
    subprocess.run(["bash", "-c", ubs_step["command"]], check=True)
    ubs.send(5)
    after = retention(ubs, tmp_path, keep_daily=1)
    assert after["status"] == "ok" and after["report"] == {"status": "ok", "critical": False, "repository": ubs.repo}
    assert after["compacted"] is True
    assert sorted(after["pruned"]) == [f"{PREFIX}diario-202601{d:02d}T023000Z" for d in (1, 2, 3, 4)]
    assert backup_host_list(tmp_path, ubs)[0] == [f"{PREFIX}diario-20260105T023000Z"]


@pytest.mark.nt("NT-inapta-4")
def test_the_finding_recorded_on_the_ubs_is_a_critical_pendency_of_the_report(ubs, tmp_path):
    """The role records the module's report with pec_state on the UBS; pec_info reads the states; the report
    turns a finding into a critical pendency naming the archive and the rollback, and a clean run clears it."""
    for day in (1, 2):
        ubs.send(day)
    assert retention(ubs, tmp_path)["status"] == "ok"
    ubs.delete(f"{PREFIX}diario-20260101T023000Z")
    found = retention(ubs, tmp_path)
    facts = str(tmp_path / "facts")

    def report_row(data):
        pec_state.write_state(facts, "borg_retention", json.loads(json.dumps(data)), now=NOW)
        pec = {"role": "local_server", "installed": True, "state": pec_state.read_states(facts, now=NOW)}
        host = {"host": "ubs", "groups": ["ubs", "ubs_inaptas"], "pec": pec}
        return report_model.build([host], {}, NOW.date())["rows"][0]

    row = report_row(found["report"])
    (pend,) = [p for p in row["pendencias"] if p["code"] == "copias_apagadas"]
    assert pend["severity"] == "critica" and f"{PREFIX}diario-20260101T023000Z (apagada)" in pend["msg"]
    assert f"transação {found['finding']['rollback_to']}" in pend["msg"]
    accepted = retention(ubs, tmp_path, accept_transaction=found["finding"]["last_transaction"])
    row = report_row(accepted["report"])
    assert "copias_apagadas" not in [p["code"] for p in row["pendencias"]]


def test_an_archive_sent_and_deleted_between_two_runs_is_found_and_named_by_the_rollback(ubs, tmp_path):
    ubs.send(1)
    assert retention(ubs, tmp_path)["status"] == "ok"
    day2 = ubs.send(2)
    ubs.send(3)
    ubs.delete(day2)
    found = retention(ubs, tmp_path)
    assert found["critical"] is True and found["finding"]["lost"] == [] and found["finding"]["objects_removed"] > 0
    assert found["finding"]["recoverable"] == [day2] and f"which brings back {day2}" in found["msg"]


def test_a_chunk_removed_under_an_archive_still_listed_is_found(ubs, tmp_path):
    name = ubs.send(1)
    assert retention(ubs, tmp_path)["status"] == "ok"
    ubs.send(2)
    # the UBS removes one stored object (its first data chunk): the archive still lists, its data is gone
    txns, _last = bh.history(ubs.repo, -1)
    chunk = next(key for t in txns for tag, key in t.ops if tag == bh.TAG_PUT and key != bh.MANIFEST_ID)
    ubs.borg("debug", "delete-obj", ubs.location, chunk.hex())
    assert name in ubs.names()
    found = retention(ubs, tmp_path)
    assert found["critical"] is True and found["finding"]["objects_removed"] == 1
    assert "stored object(s) removed" in found["msg"]


@pytest.mark.parametrize("when", ["backdated", "future"])
def test_archives_dated_before_the_newest_or_in_the_future_stop_the_prune(ubs, tmp_path, when):
    """Archives that would make prune delete the real ones: keep-daily keeps the newest of each day."""
    for day in (1, 2, 3):
        ubs.send(day)
    assert retention(ubs, tmp_path)["status"] == "ok"
    stamp = datetime.datetime(2026, 1, 2, 23, 0) if when == "backdated" else datetime.datetime(2027, 6, 1, 2, 30)
    forged = ubs.send(stamp)
    found = retention(ubs, tmp_path, keep_daily=1)
    assert found["critical"] is True and found["pruned"] == []
    (odd,) = found["finding"]["suspicious"]
    assert odd["name"] == forged and odd["why"] == when
    assert len(backup_host_list(tmp_path, ubs)[0]) == 4, "nothing pruned"


def test_accepting_the_transactions_compacts_them_like_the_rest(ubs, tmp_path):
    for day in (1, 2):
        ubs.send(day)
    assert retention(ubs, tmp_path)["status"] == "ok"
    ubs.delete(f"{PREFIX}diario-20260101T023000Z")
    found = retention(ubs, tmp_path)
    assert found["critical"] is True
    too_early = retention(ubs, tmp_path, accept_transaction=found["finding"]["rollback_to"])
    assert too_early["critical"] is True, "accepting a transaction before the deletion accepts nothing"
    accepted = retention(ubs, tmp_path, accept_transaction=found["finding"]["last_transaction"])
    assert accepted["status"] == "ok" and accepted["compacted"] is True
    assert retention(ubs, tmp_path)["status"] == "ok", "accepted once, not found again"


def test_a_deletion_the_ubs_makes_while_the_backup_host_prunes_is_found_before_compacting(ubs, tmp_path, monkeypatch):
    for day in (1, 2, 3):
        ubs.send(day)
    assert retention(ubs, tmp_path)["status"] == "ok"
    prune = _borg.BorgRepo.prune_archives

    def ubs_deletes_then_prune(self, *args, **kwargs):
        ubs.delete(f"{PREFIX}diario-20260103T023000Z")
        return prune(self, *args, **kwargs)

    monkeypatch.setattr(_borg.BorgRepo, "prune_archives", ubs_deletes_then_prune)
    found = retention(ubs, tmp_path, keep_daily=1)
    assert found["critical"] is True and found["compacted"] is False
    assert found["pruned"] == [f"{PREFIX}diario-20260101T023000Z"] and found["finding"]["lost"][0]["name"].endswith(
        "20260103T023000Z"
    )
    monkeypatch.undo()
    again = retention(ubs, tmp_path, keep_daily=1)
    assert again["critical"] is True and [x["name"] for x in again["finding"]["lost"]] == [
        f"{PREFIX}diario-20260103T023000Z"
    ], "this host's own prune is not taken for the UBS's"


# ---------------------------------------------------------------------------------------------- a normal day
@pytest.mark.nt("NT-inapta-4")
def test_a_normal_day_prunes_and_compacts_and_a_second_run_changes_nothing(ubs, tmp_path):
    for day in range(1, 7):
        ubs.send(day)
    before = repo_bytes(ubs)
    done = retention(ubs, tmp_path, keep_daily=3)
    assert done["status"] == "ok" and done["critical"] is False and done["changed"] is True
    assert sorted(done["pruned"]) == [f"{PREFIX}diario-202601{d:02d}T023000Z" for d in range(1, 4)]
    assert done["compacted"] is True and repo_bytes(ubs) < before - 150_000, "compact freed the pruned days"
    assert backup_host_list(tmp_path, ubs)[0] == [f"{PREFIX}diario-202601{d:02d}T023000Z" for d in (4, 5, 6)]
    assert os.stat(done["state_path"]).st_mode & 0o777 == 0o600
    assert PASS not in open(done["state_path"]).read()
    second = retention(ubs, tmp_path, keep_daily=3)
    assert second["changed"] is False and second["pruned"] == [] and second["compacted"] is False
    # the next day, a dump long enough for borg to commit a checkpoint and remove it: no finding
    ubs.send(7, data=os.urandom(3_000_000), checkpoint=True)
    history, _last = bh.history(ubs.repo, json.load(open(done["state_path"]))["boundary"])
    assert len([t for t in history if t.logged]) >= 2, "the checkpoint made its own transaction"
    nextday = retention(ubs, tmp_path, keep_daily=3)
    assert nextday["status"] == "ok" and nextday["pruned"] == [f"{PREFIX}diario-20260104T023000Z"]


def test_a_repository_in_append_only_mode_is_set_back_for_the_backup_host_only(ubs, tmp_path):
    ubs.send(1)
    ubs.send(2)
    subprocess.run(
        ["borg", "config", ubs.repo, "append_only", "1"],
        check=True,
        env=dict(os.environ, BORG_BASE_DIR=str(tmp_path / "x")),
    )
    done = retention(ubs, tmp_path, keep_daily=1)
    assert done["append_only_cleared"] is True and done["compacted"] is True and done["status"] == "ok"
    assert bh.read_config(ubs.repo)["append_only"] is False
    # the UBS's forced command still refuses a real deletion
    proc = ubs.borg("delete", "--force", ubs.location, check=False)
    assert proc.returncode != 0 and b"append-only" in proc.stderr


# ---------------------------------------------------------------------------------------------- check mode
def test_check_mode_changes_nothing_and_says_what_it_would_do(ubs, tmp_path):
    for day in range(1, 6):
        ubs.send(day)
    state = br.default_state_path(ubs.repo)
    before = snapshot(ubs.repo)
    would = retention(ubs, tmp_path, check_mode=True, keep_daily=2)
    assert would["changed"] is True and would["would_compact"] is True and len(would["pruned"]) == 3
    assert snapshot(ubs.repo) == before and not os.path.exists(state)
    assert len(backup_host_list(tmp_path, ubs)[0]) == 5
    # with a finding: reported in check mode too, nothing written
    retention(ubs, tmp_path, keep_daily=30)
    ubs.delete(f"{PREFIX}diario-20260101T023000Z")
    recorded = open(state).read()
    before = snapshot(ubs.repo, state)
    found = retention(ubs, tmp_path, check_mode=True)
    assert found["critical"] is True and snapshot(ubs.repo, state) == before and open(state).read() == recorded


# -------------------------------------------------------------------------------------- what it cannot open
def test_a_repository_it_cannot_open_ends_in_a_clear_message_and_a_missing_one_is_not_an_error(ubs, tmp_path):
    ubs.send(1)
    with pytest.raises(PecError) as err:
        retention(ubs, tmp_path, passphrase="not-the-passphrase")
    assert "does not open" in err.value.msg and "nothing was pruned or compacted" in err.value.msg
    assert "not-the-passphrase" not in err.value.msg
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config").write_text("[other]\nx = 1\n")
    with pytest.raises(PecError, match="is not a borg repository"):
        br.run(params(ubs, tmp_path, repository=str(junk)), now=NOW)
    absent = br.run(params(ubs, tmp_path, repository=str(tmp_path / "none")), now=NOW)
    assert absent["status"] == "absent" and absent["changed"] is False and "first copy" in absent["msg"]
    state = br.default_state_path(ubs.repo)
    with open(state, "w") as handle:
        handle.write("{not json")
    with pytest.raises(PecError, match="do not delete it"):
        retention(ubs, tmp_path)


# ------------------------------------------------------------------------------------ the transaction log
def test_lines_of_transactions_undone_by_a_rollback_are_not_taken_as_the_ubs():
    lines = [(5, "a"), (10, "b"), (15, "c"), (12, "d"), (20, "e")]
    assert bh.current_log(lines, 20) == {5: "a", 10: "b", 12: "d", 20: "e"}
    assert bh.current_log([(5, "a"), (10, "b"), (15, "c")], 12) == {5: "a", 10: "b"}, "after the last transaction"
