"""collection_state and the daily job: the collection's own state (lotes ledger, state files, job configurations,
state records) goes off the host with each backup, in the same borg archive (a real borg on a directory) or beside
the dump on a share (age-encrypted like it), never the passphrase, the key, borg's cache or the quarantine; a copy
is put back only as it was."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest
from backup_helpers import CANARY, job_config, params
from test_borg import PASS, borg_params, day, status_of

from ansible_collections.sesdf.esus.plugins.module_utils import _borg
from ansible_collections.sesdf.esus.plugins.module_utils import collection_state as cs
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils import pec_offhost as poff
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

HAVE_BORG = shutil.which("borg") is not None
HAVE_AGE = shutil.which("age") is not None and shutil.which("age-keygen") is not None
LEDGER = {"format": 1, "lotes": {"7": {"id": 7, "file": "lote-7.zip", "sha256": "ab" * 32, "confirmed_at": "x"}}}


def server_state(tmp_path):
    """A UBS's state as the roles and jobs leave it: the ledger, a lote in the inbox, borg's cache, the quarantine,
    markers, locks, temporaries, the job configurations beside the borg secrets, the state records among other
    facts."""
    state, config, facts = tmp_path / "var-lib", tmp_path / "etc-sesdf", tmp_path / "facts.d"
    files = {
        state / "lotes" / "ledger.json": json.dumps(LEDGER),
        state / "lotes" / "entrada" / "RAS_Lote3.zip": "lote bytes",
        state / "lotes" / ".lock": "",
        state / "lotes" / ".ledger.json.abc.tmp": "half",
        state / "borg-repo.json": json.dumps({"repository_id": "r1"}),
        state / "cnes" / "semanal-status.json": "{}",
        state / "borg" / "cache" / "big": "cache",
        state / "quarentena" / "x.service": "[Unit]",
        state / "app-stopped.json": "{}",
        state / "backup-check.json": "{}",
        config / "backup.json": json.dumps({"dest_dir": "/var/backups/esus"}),
        config / "lotes-export.json": "{}",
        config / "borg.passphrase": PASS,
        config / "borg.key": "BORG_KEY abc",
        config / "borg_known_hosts": "bkp ssh-ed25519 AAAA",
        facts / "sesdf_esus_upgrade.fact": json.dumps({"concern": "upgrade"}),
        facts / "sesdf_esus_manual_steps.fact": "{}",
        facts / "other_tool.fact": "{}",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (state / "lotes" / "ledger.json").chmod(0o600)
    os.symlink("/etc/shadow", state / "link-out")
    return {"state_dir": str(state), "config_dir": str(config), "facts_dir": str(facts)}


def copied_names(tree):
    return sorted(os.path.relpath(os.path.join(d, f), tree) for d, _dirs, names in os.walk(tree) for f in names)


def expected_names(where):
    s, c, f = (where[k].lstrip("/") for k in ("state_dir", "config_dir", "facts_dir"))
    return sorted(
        [
            cs.MANIFEST,
            cs.BACKUP_MANIFEST,
            f"{s}/lotes/ledger.json",
            f"{s}/lotes/entrada/RAS_Lote3.zip",
            f"{s}/borg-repo.json",
            f"{s}/cnes/semanal-status.json",
            f"{c}/backup.json",
            f"{c}/lotes-export.json",
            f"{f}/sesdf_esus_upgrade.fact",
            f"{f}/sesdf_esus_manual_steps.fact",
        ]
    )


@pytest.mark.nt("NT-inapta-4")
@pytest.mark.skipif(not HAVE_BORG, reason="borg not installed on this machine")
def test_the_borg_archive_of_a_day_holds_the_dump_and_the_state_tree_without_secrets_or_caches(source, tmp_path):
    where = server_state(tmp_path)
    p = borg_params(source, tmp_path, state_copy=True, **where)
    (tmp_path / "share").mkdir()
    result, error = pb.backup_run(p, now=day(0))
    assert error is None and result["offhost"]["state"] == "ok", result["offhost"]
    assert result["state_copy"]["files"] == 8, result["state_copy"]
    repo = poff.borg_repo(p)
    name = repo.archives("esus-0020002-")[-1]["name"]
    out = tmp_path / "state.tar"
    repo.export_tar(name, str(out), [cs.TREE])
    tree = cs.extract_tar(open(out, "rb"), str(tmp_path / "x"))
    assert copied_names(tree) == expected_names(where)
    manifest, backup_manifest = cs.read_tree(tree)
    assert manifest["cnes"] == "0020002" and manifest["archive"] == os.path.basename(result["path"])
    ledger = os.path.join(tree, where["state_dir"].lstrip("/"), "lotes", "ledger.json")
    assert json.load(open(ledger)) == LEDGER
    assert backup_manifest["row_hashes"] and backup_manifest["pec_version"] == "4.2.8"
    comment = json.loads(repo.archive_info(name)["comment"])
    assert comment["state"] == {"tree": cs.TREE, "files": 8} and comment["pec_version"] == "4.2.8"
    # the weekly drill still restores the dump alone (the tree is not fed to pg_restore)
    assert status_of(p)["restore_drill"]["result"] == "ok", status_of(p)["restore_drill"]
    text = open(out, "rb").read()
    assert PASS.encode() not in text and CANARY.encode() not in text and b"BORG_KEY" not in text


@pytest.mark.skipif(not HAVE_BORG, reason="borg not installed on this machine")
def test_days_sent_late_carry_the_state_of_their_own_day(source, tmp_path):
    where = server_state(tmp_path)
    p = borg_params(source, tmp_path, state_copy=True, **where)
    os.makedirs(tmp_path / "share")
    pb.backup_run(p, now=day(0))
    os.rename(tmp_path / "share", tmp_path / "away")
    ledger = os.path.join(where["state_dir"], "lotes", "ledger.json")
    for n in (1, 2):
        with open(ledger, "w") as handle:
            json.dump({"format": 1, "lotes": {str(n): {"id": n}}}, handle)
        pb.backup_run(p, now=day(n))
    os.rename(tmp_path / "away", tmp_path / "share")
    with open(ledger, "w") as handle:
        json.dump({"format": 1, "lotes": {"3": {"id": 3}}}, handle)
    pb.backup_run(p, now=day(3))
    repo = poff.borg_repo(p)
    seen = []
    for archive in repo.archives("esus-0020002-"):
        out = tmp_path / (archive["name"] + ".tar")
        repo.export_tar(archive["name"], str(out), [cs.TREE])
        tree = cs.extract_tar(open(out, "rb"), str(tmp_path / archive["name"]))
        seen.append(sorted(json.load(open(os.path.join(tree, ledger.lstrip("/"))))["lotes"]))
    assert seen == [["7"], ["1"], ["2"], ["3"]], "each day's ledger, not the one of the day it was sent"


@pytest.mark.nt("NT-inapta-4")
@pytest.mark.skipif(not HAVE_AGE, reason="age not installed on this machine")
def test_on_a_share_the_state_copy_lies_beside_the_dump_encrypted_like_it(source, tmp_path):
    keys = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
    recipient = next(line.split(": ")[1] for line in keys.splitlines() if "public key" in line)
    identity = tmp_path / "identity.txt"
    identity.write_text(keys)
    where = server_state(tmp_path)
    share = tmp_path / "share"
    share.mkdir()
    p = params(
        source,
        tmp_path / "b",
        cnes="0020002",
        offhost_enabled=True,
        offhost_method="mount",
        offhost_dest=str(share),
        offhost_require_mount=False,
        offhost_encrypt_recipient=recipient,
        state_copy=True,
        **where,
    )
    result, error = pb.backup_run(p)
    assert error is None and result["offhost"]["state"] == "ok", result["offhost"]
    stem = os.path.basename(result["path"])[: -len(".pgdump.zst")]
    assert sorted(os.listdir(share)) == sorted(
        f"{stem}{suffix}"
        for suffix in (".pgdump.zst.age", ".pgdump.zst.age.sha256", ".estado.tar.zst.age", ".estado.tar.zst.age.sha256")
    )
    sealed = share / f"{stem}.estado.tar.zst.age"
    assert sealed.read_bytes()[:21] == b"age-encryption.org/v1" and LEDGER["lotes"]["7"]["file"].encode() not in (
        sealed.read_bytes()
    )
    plain = tmp_path / "plain.tar.zst"
    subprocess.run(["age", "-d", "-i", str(identity), "-o", str(plain), str(sealed)], check=True)
    tree = cs.extract_file(str(plain), "zstd", str(tmp_path / "x"))
    assert copied_names(tree) == expected_names(where)
    # nothing left staged on the server once both arrived
    assert os.listdir(tmp_path / "b" / ".offhost") == []


def test_a_share_that_takes_the_dump_but_not_its_state_copy_is_a_failed_copy(source, tmp_path, monkeypatch):
    share = tmp_path / "share"
    share.mkdir()
    p = params(
        source,
        tmp_path / "b",
        offhost_enabled=True,
        offhost_method="mount",
        offhost_dest=str(share),
        offhost_require_mount=False,
        state_copy=True,
        **server_state(tmp_path),
    )
    real = pb.push_offhost

    def dump_only(path, params_):
        if path.endswith(cs.SUFFIX):
            return {"state": "failed", "path": None, "sha256": None, "error": "share full", "destination": ""}
        return real(path, params_)

    monkeypatch.setattr(pb, "push_offhost", dump_only)
    result, error = pb.backup_run(p)
    assert error is None and result["verified"]
    off = result["offhost"]
    assert off["state"] == "failed" and "state copy did not" in off["error"] and "share full" in off["error"]
    monkeypatch.setattr(pb, "push_offhost", real)
    pb.backup_run(dict(p, db_port=1))  # the next run (even without a backup) sends what is missing
    status = status_of(p)
    assert status["offhost"]["state"] == "ok"
    assert any(name.endswith(cs.SUFFIX) for name in os.listdir(share))


def test_retention_takes_the_state_copy_with_its_backup(source, tmp_path):
    p = params(
        source, tmp_path / "b", keep_daily=1, keep_weekly=0, keep_min=1, state_copy=True, **server_state(tmp_path)
    )
    first, _error = pb.backup_run(p, now=day(0))
    second, _error = pb.backup_run(p, now=day(1))
    assert first["state_copy"]["path"] in second["retention"]["removed"]
    assert os.path.exists(second["state_copy"]["path"]) and not os.path.exists(first["state_copy"]["path"])


def test_a_state_copy_that_cannot_be_written_keeps_the_backup_and_the_job_says_so(source, tmp_path, monkeypatch):
    def fails(*_args, **_kwargs):
        raise PecError("the state copy could not be written: No space left on device")

    monkeypatch.setattr(cs, "snapshot", fails)
    config = pb.BackupJobConfig(
        **job_config(source, tmp_path / "dest", tmp_path / "e-SUS", **server_state(tmp_path)), cnes="0020002"
    )
    lines = []
    code = pb._backup_job(config, argparse.Namespace(now=None), lambda line, *level: lines.append((line, level)))
    assert code == pb.EXIT_ATTENTION
    assert [line for line, level in lines if level == ("warning",) and "STATE COPY FAILED" in line]
    assert [p for p in os.listdir(tmp_path / "dest") if p.endswith(".pgdump.zst")], "the backup is kept"


def test_a_tree_is_put_back_only_as_recorded_into_the_new_servers_roots(tmp_path):
    where = server_state(tmp_path)
    archive = tmp_path / "b" / "esus_diario_20260101T023000Z.pgdump.zst"
    archive.parent.mkdir()
    archive.write_bytes(b"x")
    copy = cs.snapshot(str(archive), where, "zstd", cnes="0020002")
    tree = cs.extract_file(copy["path"], "zstd", str(tmp_path / "work"))
    manifest, _files = cs.read_tree(tree)
    new = {k: str(tmp_path / "new" / k) for k in ("state", "config", "facts")}
    os.makedirs(new["facts"])
    with open(os.path.join(new["facts"], "sesdf_esus_manual_steps.fact"), "w") as handle:
        handle.write('{"kept": true}')
    plan = cs.plan_restore(tree, manifest, new, skip=("sesdf_esus_manual_steps.fact",))
    actions = {os.path.relpath(i["target"], tmp_path / "new"): i["action"] for i in plan}
    assert actions["state/lotes/ledger.json"] == "create" and actions["facts/sesdf_esus_manual_steps.fact"] == "skip"
    done = cs.apply_restore(plan)
    assert json.load(open(os.path.join(new["state"], "lotes", "ledger.json"))) == LEDGER
    assert os.stat(os.path.join(new["state"], "lotes", "ledger.json")).st_mode & 0o777 == 0o600
    assert json.load(open(os.path.join(new["facts"], "sesdf_esus_manual_steps.fact"))) == {"kept": True}
    assert len(done["created"]) == 7
    again = cs.apply_restore(cs.plan_restore(tree, manifest, new, skip=("sesdf_esus_manual_steps.fact",)))
    assert again["created"] == [] and again["replaced"] == [] and len(again["same"]) == 7
    # a damaged file in the copy is refused before anything is put back
    with open(os.path.join(tree, where["state_dir"].lstrip("/"), "lotes", "ledger.json"), "a") as handle:
        handle.write(" ")
    with pytest.raises(PecError, match="damaged: .*ledger.json differs"):
        cs.read_tree(tree)


def test_a_state_copy_with_anything_but_the_tree_is_refused(tmp_path):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo(f"{cs.TREE}/../../etc/cron.d/x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    data.seek(0)
    with pytest.raises(PecError, match="not part of a sesdf-esus-estado/ tree"):
        cs.extract_tar(data, str(tmp_path / "w"))
    assert not (tmp_path / "etc").exists()


def test_borg_create_and_the_drill_read_the_dump_alone(tmp_path):
    class Recorder:
        calls = []

        def pipe(self, producer, argv, env, timeout=None, cwd=None):
            self.calls.append((argv, cwd))
            return 0, 0, "{}", ""

        def extract_to(self, argv, env, consumer, consumer_env, timeout=None):
            self.calls.append((argv, None))
            return 0, 0, ""

    secret = tmp_path / "p"
    secret.write_text("x")
    runner = Recorder()
    repo = _borg.BorgRepo(str(tmp_path / "r"), str(secret), str(tmp_path / "base"), runner=runner)
    repo.create_from(["zstd"], "a", "2026-01-01T00:00:00", {}, paths=[cs.TREE], cwd="/w")
    repo.extract_to("a", ["pg_restore"], {})
    (create, cwd), (extract, _extract_call) = runner.calls
    assert create[-2:] == ["-", cs.TREE] and cwd == "/w"
    assert extract[-1] == _borg.STDIN_NAME


@pytest.mark.skipif(not HAVE_BORG, reason="borg not installed on this machine")
def test_a_damaged_state_copy_never_holds_back_the_days_dump(source, tmp_path, monkeypatch):
    p = borg_params(source, tmp_path, state_copy=True, **server_state(tmp_path))
    (tmp_path / "share").mkdir()
    real = cs.snapshot

    def damaged(*args, **kwargs):
        made = real(*args, **kwargs)
        with open(made["path"], "r+b") as handle:
            handle.seek(20)
            handle.write(b"\0" * 64)
        return made

    monkeypatch.setattr(cs, "snapshot", damaged)
    result, error = pb.backup_run(p, now=day(0))
    assert error is None and result["offhost"]["state"] == "ok", result["offhost"]
    repo = poff.borg_repo(p)
    name = repo.archives("esus-0020002-")[-1]["name"]
    comment = json.loads(repo.archive_info(name)["comment"])
    assert "state" not in comment and "could not be read" in comment["state_error"]
    assert status_of(p)["restore_drill"]["result"] == "ok", "the dump itself went whole"
