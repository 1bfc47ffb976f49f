"""_borg and the borg off-host copy: borg faked at its runner for the logic, and a real borg (when installed on
this machine) for a repository on a directory over simulated days: missing days sent when the destination is back,
another UBS's repository refused, a damaged chunk found by the check, the restore drill."""

from __future__ import annotations

import datetime
import json
import os
import shutil

import pytest
from backup_helpers import CANARY, params

from ansible_collections.sesdf.esus.plugins.module_utils import _borg, pec_drill, report_model
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils import pec_offhost as poff
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

PASS = "Borg-Pass-Canary-91c2"
HAVE_BORG = shutil.which("borg") is not None


class FakeRunner:
    """Records argv and environment; answers from ``replies`` (argv[1] -> (rc, stdout, stderr))."""

    def __init__(self, replies=None):
        self.calls = []
        self.replies = replies or {}

    def _reply(self, argv, env):
        self.calls.append((list(argv), dict(env)))
        return self.replies.get(argv[1], (0, "{}", ""))

    def run(self, argv, env, timeout=None):
        return self._reply(argv, env)

    def pipe(self, producer, argv, env, timeout=None):
        rc, out, err = self._reply(argv, env)
        return 0, rc, out, err

    def extract_to(self, argv, env, consumer, consumer_env, timeout=None):
        rc, _out, err = self._reply(argv, env)
        return rc, 0, err


def fake_repo(tmp_path, runner, location="ssh://borg@bkp:22/srv/borg/ubs-0020002"):
    secret = tmp_path / "pass"
    secret.write_text(PASS + "\n")
    return _borg.BorgRepo(location, str(secret), str(tmp_path / "base"), ssh_key="/root/.ssh/k", runner=runner)


def test_the_passphrase_is_never_in_argv_or_environment_only_its_file(tmp_path):
    runner = FakeRunner({"create": (0, json.dumps({"archive": {"stats": {"deduplicated_size": 5}}}), "")})
    repo = fake_repo(tmp_path, runner)
    repo.create_from(["zstd", "-dc", "x"], "esus-0020002-diario-20260101T023000Z", "2026-01-01T02:30:00", {"a": 1})
    repo.archives("esus-0020002-")
    for argv, env in runner.calls:
        assert PASS not in " ".join(argv) and PASS not in json.dumps(env)
        assert env["BORG_PASSCOMMAND"] == "cat " + str(tmp_path / "pass")
        assert "BatchMode=yes" in env["BORG_RSH"] and "-i /root/.ssh/k" in env["BORG_RSH"]
    create = runner.calls[0][0]
    assert create[create.index("--chunker-params") + 1] == "buzhash,14,20,16,4095"
    assert create[create.index("--comment") + 1] == '{{"a":1}}', "borg expands {} in comments: escaped"


@pytest.mark.parametrize(
    ("stderr", "kind", "says"),
    [
        (
            "passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is incorrect.",
            _borg.WRONG_PASSPHRASE,
            "another UBS",
        ),
        (
            "ssh: connect to host bkp port 22: Connection refused\nConnection closed by remote host.",
            _borg.DOWN,
            "sent when it is back",
        ),
        ("OSError: [Errno 28] No space left on device", _borg.FULL, "free space"),
        ("Repository /x does not exist.", _borg.NO_REPOSITORY, "no repository"),
        ("borg@bkp: Permission denied (publickey).", _borg.DENIED, "installs the key"),
    ],
)
def test_each_borg_failure_is_a_clear_message_and_keeps_the_local_backups(tmp_path, stderr, kind, says):
    repo = fake_repo(tmp_path, FakeRunner({"list": (2, "", stderr)}))
    with pytest.raises(_borg.BorgError) as err:
        repo.archives()
    assert err.value.kind == kind
    assert says in err.value.msg and "local backups are untouched" in err.value.msg


def test_check_reports_damage_as_a_result_but_an_unreachable_host_as_an_error(tmp_path):
    damaged = FakeRunner({"check": (1, "", "Index object count mismatch.\nsegment 3 is damaged")})
    ok, message = fake_repo(tmp_path, damaged).check()
    assert not ok and "damaged" in message
    assert "--verify-data" in damaged.calls[0][0]
    down = FakeRunner({"check": (2, "", "ssh: connect to host bkp port 22: No route to host")})
    with pytest.raises(_borg.BorgError):
        fake_repo(tmp_path, down).check()


def test_prune_never_without_a_daily_copy_and_only_this_ubs_archives(tmp_path):
    runner = FakeRunner(
        {"prune": (0, "", "Pruning archive (1/1):   esus-0020002-diario-20260101T023000Z  Thu, 2026-01-01\n")}
    )
    repo = fake_repo(tmp_path, runner)
    with pytest.raises(PecError, match="never pruned"):
        repo.prune("esus-0020002-", 0, 4, 6)
    assert repo.prune("esus-0020002-", 7, 4, 6) == ["esus-0020002-diario-20260101T023000Z"]
    argv = runner.calls[0][0]
    assert argv[argv.index("--glob-archives") + 1] == "esus-0020002-*" and runner.calls[1][0][1] == "compact"


def test_pending_days_are_the_missing_ones_oldest_first_and_pruned_ones_are_not_sent_again():
    def local(*stamps):
        return [{"name": f"esus-0020002-diario-202601{d:02d}T023000Z"} for d in stamps]

    in_repo = {b["name"] for b in local(1, 2, 3)}
    assert [b["name"][-16:-8] for b in poff.pending_for_borg(local(1, 2, 3, 4, 5), in_repo)] == ["20260104", "20260105"]
    pruned_there = {b["name"] for b in local(3)}
    assert poff.pending_for_borg(local(1, 2, 3), pruned_there) == []
    assert len(poff.pending_for_borg(local(1, 2), set())) == 2


def test_a_repository_of_another_ubs_is_refused_by_id_and_by_archive_names(tmp_path):
    info = json.dumps({"repository": {"id": "bbbb"}, "encryption": {"mode": "repokey-blake2"}})
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"repository_id": "aaaa"}))
    p = {"offhost_method": "borg_ssh", "borg_state_path": str(state)}
    repo = fake_repo(tmp_path, FakeRunner({"info": (0, info, "")}))
    with pytest.raises(PecError, match="not the one this UBS made"):
        poff.open_repository(repo, p, "esus-0020002-")
    foreign = json.dumps({"archives": [{"name": "esus-0030003-diario-20260101T023000Z"}]})
    state.unlink()
    repo = fake_repo(tmp_path, FakeRunner({"info": (0, info, ""), "list": (0, foreign, "")}))
    with pytest.raises(PecError, match="archives of another UBS.*esus-0030003"):
        poff.open_repository(repo, p, "esus-0020002-")
    assert not state.exists(), "a refused repository is not adopted"


NO_REPO = (2, "", "Repository /srv/borg/ubs-0020002 does not exist.")


@pytest.mark.parametrize(
    "record, says",
    [
        (None, "no escrow record"),
        ({"passphrase_file": "/outro/borg.passphrase", "sources": ["inventory"]}, "is for '/outro/borg.passphrase'"),
        ({"passphrase_file": "PASSFILE", "sources": []}, None),
        ({"passphrase_file": "PASSFILE", "sources": ["someone said so"]}, None),
    ],
)
def test_a_repository_is_never_made_without_its_passphrase_in_escrow(tmp_path, record, says):
    runner = FakeRunner({"info": NO_REPO})
    repo = fake_repo(tmp_path, runner)
    escrow = tmp_path / "escrow.json"
    if record is not None:
        escrow.write_text(json.dumps(record).replace("PASSFILE", repo.passphrase_file))
    p = {"offhost_method": "borg_ssh", "borg_state_path": str(tmp_path / "state.json"), "borg_escrow_path": str(escrow)}
    with pytest.raises(PecError) as err:
        poff.open_repository(repo, p, "esus-0020002-")
    assert "não estão sob custódia" in err.value.msg and "are not escrowed" in err.value.msg
    assert "backup_schedule_borg_export_dir" in err.value.msg and "backup_schedule_borg_passphrase" in err.value.msg
    assert [argv[1] for argv, _env in runner.calls] == ["info"], "no borg init"
    assert not (tmp_path / "state.json").exists()
    status = poff.escrow_status(p, repo.passphrase_file)
    assert status["escrowed"] is False and (says is None or says in status["error"])


@pytest.mark.parametrize("sources", [["inventory"], ["vault_export"], ["inventory", "vault_export"]])
def test_an_escrowed_passphrase_lets_the_repository_be_made(tmp_path, sources):
    info = json.dumps({"repository": {"id": "aaaa"}, "encryption": {"mode": "repokey-blake2"}})
    runner = FakeRunner({"info": NO_REPO})
    repo = fake_repo(tmp_path, runner)
    escrow = escrow_record(tmp_path, repo.passphrase_file, sources)
    p = {
        "offhost_method": "borg_ssh",
        "borg_state_path": str(tmp_path / "state.json"),
        "borg_escrow_path": escrow,
        "borg_key_export": str(tmp_path / "borg.key"),
    }

    def made(argv, env):
        runner.calls.append((list(argv), dict(env)))
        if argv[1] == "key":
            (tmp_path / "borg.key").write_text("BORG_KEY x\n")
        done = any(a[1] == "init" for a, _e in runner.calls)
        return (0, info, "") if argv[1] == "info" and done else runner.replies.get(argv[1], (0, "{}", ""))

    runner._reply = made
    assert poff.open_repository(repo, p, "esus-0020002-") == "aaaa"
    assert "init" in [argv[1] for argv, _env in runner.calls]
    assert poff.escrow_status(p, repo.passphrase_file) == {
        "escrowed": True,
        "sources": sources,
        "key_in_vault_export": False,
    }


def test_cadence_of_check_and_drill():
    now = datetime.datetime(2026, 1, 8, 2, 30, tzinfo=datetime.UTC)
    assert pec_drill.due({"result": "never"}, "checked_at", 7, now)
    assert not pec_drill.due({"checked_at": "2026-01-05T02:30:00Z"}, "checked_at", 7, now)
    assert pec_drill.due({"checked_at": "2026-01-01T02:31:00Z"}, "checked_at", 7, now), "a run a bit earlier counts"
    assert not pec_drill.due({}, "finished_at", 0, now), "0 turns it off"
    assert pec_drill.compare_counts({"a": 1, "b": 2}, {"b"}, {"a": 1, "b": 9}) == {}
    assert pec_drill.compare_counts({"a": 1}, set(), {"a": 0}) == {"a": {"manifest": 1, "restored": 0}}


# ----------------------------------------------------------------------------------- a real borg on a directory
def escrow_record(tmp_path, passphrase_file, sources=("vault_export",)):
    """The record the backup_schedule role writes once the passphrase is escrowed."""
    path = tmp_path / "borg-escrow.json"
    path.write_text(json.dumps({"passphrase_file": str(passphrase_file), "sources": list(sources)}))
    return str(path)


def borg_params(source, tmp_path, **over):
    secret = tmp_path / "borg.passphrase"
    if not secret.exists():
        secret.write_text(PASS + "\n")
        secret.chmod(0o600)
    over.setdefault("borg_escrow_path", escrow_record(tmp_path, secret))
    return params(
        source,
        tmp_path / "b",
        cnes="0020002",
        label="diario",
        offhost_enabled=True,
        offhost_method="borg_mount",
        offhost_dest=str(tmp_path / "share" / "repo"),
        offhost_require_mount=False,
        borg_passphrase_file=str(secret),
        borg_base_dir=str(tmp_path / "borgbase"),
        borg_state_path=str(tmp_path / "state" / "borg-repo.json"),
        borg_key_export=str(tmp_path / "borg.key"),
        manifest_row_counts=True,
        **over,
    )


def day(n):
    return datetime.datetime(2026, 1, 1, 2, 30, tzinfo=datetime.UTC) + datetime.timedelta(days=n)


def status_of(p):
    with open(p["status_path"]) as handle:
        return json.load(handle)


@pytest.mark.skipif(not HAVE_BORG, reason="borg not installed on this machine")
def test_simulated_days_destination_down_two_days_then_back_drill_and_damage(source, tmp_path):
    p = borg_params(source, tmp_path)
    (tmp_path / "share").mkdir()
    result, error = pb.backup_run(p, now=day(0))
    assert error is None and result["offhost"]["state"] == "ok", result["offhost"]
    st = status_of(p)
    assert st["offhost"]["pending_days"] == 0 and st["offhost"]["method"] == "borg_mount"
    assert st["restore_drill"]["result"] == "ok", st["restore_drill"]
    assert st["restore_drill"]["tables"] == 3 and st["restore_drill"]["duration_s"] > 0
    assert st["restore_drill"]["hashes_compared"] is True, "the manifest's ordered-row hashes went through borg"
    assert st["repo_check"]["result"] == "ok"
    assert os.stat(tmp_path / "borg.key").st_mode & 0o777 == 0o600
    # destination down for two days: local backups go on, the status says how many days are pending
    os.rename(tmp_path / "share", tmp_path / "share-away")
    for n in (1, 2):
        _result, error = pb.backup_run(p, now=day(n))
        assert error is None
        st = status_of(p)
        assert st["offhost"]["state"] == "failing" and st["offhost"]["pending_days"] == n
        assert st["offhost"]["last_success"] == "2026-01-01T02:30:00Z"
    os.rename(tmp_path / "share-away", tmp_path / "share")
    _result, error = pb.backup_run(p, now=day(3))
    st = status_of(p)
    assert st["offhost"]["state"] == "ok" and st["offhost"]["pending_days"] == 0
    assert [s[-16:-8] for s in st["offhost"]["sent"]] == ["20260102", "20260103", "20260104"], "oldest first"
    # a damaged chunk on the destination: found by the next weekly check, reported, the local backups untouched
    segments = sorted((tmp_path / "share" / "repo" / "data").rglob("[0-9]*"), key=lambda f: f.stat().st_size)
    with open(segments[-1], "r+b") as seg:
        seg.seek(seg.seek(0, 2) // 2)
        seg.write(b"\0" * 64)
    local_before = sorted(os.listdir(tmp_path / "b"))
    _result, error = pb.backup_run(p, now=day(7))
    st = status_of(p)
    assert st["repo_check"]["result"] == "failed" and st["repo_check"]["checked_at"] == "2026-01-08T02:30:00Z"
    assert "damage" in st["repo_check"]["error"]
    assert set(local_before) <= set(os.listdir(tmp_path / "b"))
    text = json.dumps(st) + open(p["borg_state_path"]).read()
    assert PASS not in text and CANARY not in text


@pytest.mark.skipif(not HAVE_BORG, reason="borg not installed on this machine")
def test_wrong_passphrase_and_another_ubs_repository_fail_clearly_local_backup_kept(source, tmp_path):
    p = borg_params(source, tmp_path)
    (tmp_path / "share").mkdir()
    assert pb.backup_run(p, now=day(0))[1] is None
    (tmp_path / "borg.passphrase").write_text("not-the-passphrase\n")
    result, error = pb.backup_run(p, now=day(1))
    assert error is None and os.path.exists(result["path"])
    st = status_of(p)
    assert st["offhost"]["state"] == "failing" and "does not open with this UBS's passphrase" in st["offhost"]["error"]
    (tmp_path / "borg.passphrase").write_text(PASS + "\n")
    other = dict(
        p, cnes="0030003", status_path=str(tmp_path / "other.json"), borg_state_path=str(tmp_path / "other-state.json")
    )
    result, error = pb.backup_run(other, now=day(2))
    assert error is None and os.path.exists(result["path"])
    off = status_of(other)["offhost"]
    assert off["state"] == "failing" and "archives of another UBS" in off["error"], off


@pytest.mark.skipif(not HAVE_BORG, reason="borg not installed on this machine")
def test_without_escrow_no_repository_is_made_the_status_says_so_and_the_local_backup_is_kept(source, tmp_path):
    p = borg_params(source, tmp_path, borg_escrow_path=str(tmp_path / "no-escrow.json"))
    (tmp_path / "share").mkdir()
    result, error = pb.backup_run(p, now=day(0))
    assert error is None and os.path.exists(result["path"]), "today's local backup made"
    off = status_of(p)["offhost"]
    assert off["state"] == "failing" and "não estão sob custódia" in off["error"], off
    assert off["escrow"]["escrowed"] is False
    assert os.listdir(tmp_path / "share") == [], "nothing made at the destination"
    # once the role records the escrow, the next run makes the repository and sends the pending days
    p["borg_escrow_path"] = escrow_record(tmp_path, p["borg_passphrase_file"], ["inventory"])
    result, error = pb.backup_run(p, now=day(1))
    off = status_of(p)["offhost"]
    assert off["state"] == "ok" and off["escrow"] == {
        "escrowed": True,
        "sources": ["inventory"],
        "key_in_vault_export": False,
    }
    assert len(off["sent"]) == 2


@pytest.mark.skipif(not HAVE_BORG, reason="borg not installed on this machine")
@pytest.mark.parametrize("group", ["ubs_inaptas", "ubs_aptas"])
def test_a_borg_ubs_whose_job_ran_without_escrow_is_a_high_pendency_of_the_report(source, tmp_path, group):
    """The status the job wrote without an escrow record (no repository made), as pec_info returns it to the report:
    the UBS's row has the high escrow pendency saying what to set; once escrowed, it is gone."""
    p = borg_params(source, tmp_path, borg_escrow_path=str(tmp_path / "no-escrow.json"))
    (tmp_path / "share").mkdir()
    assert pb.backup_run(p, now=day(0))[1] is None

    def row():
        pec = {"role": "local_server", "installed": True, "backup_status": status_of(p)}
        host = {"host": "ubs", "groups": ["ubs", group], "pec": pec}
        return report_model.build([host], {}, day(0).date())["rows"][0]

    (pend,) = [x for x in row()["pendencias"] if x["code"] == "custodia_chave"]
    assert pend["severity"] == "alta" and pend["due"] and "sem custódia (escrow)" in pend["msg"]
    assert "backup_schedule_borg_export_dir" in pend["msg"] and "backup_schedule_borg_passphrase" in pend["msg"]
    p["borg_escrow_path"] = escrow_record(tmp_path, p["borg_passphrase_file"], ["inventory"])
    assert pb.backup_run(p, now=day(1))[1] is None
    assert "custodia_chave" not in [x["code"] for x in row()["pendencias"]]


def test_row_counts_of_the_manifest_leave_out_tables_modified_during_the_dump():
    result = {}
    pb.record_row_counts(result, {"a": 5, "b": 7}, {"a": 10, "b": 3, "c": 1}, {"a": 5, "b": 8, "c": 0})
    assert result["row_counts"] == {"a": 10}
    assert result["changed_during_dump"] == ["b", "c"], "modified, or unknown before the dump"
