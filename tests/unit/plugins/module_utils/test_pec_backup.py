"""pec_backup against a real PostgreSQL: failures that must publish nothing, a killed job, check mode, reuse and
the password never reaching a command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from backup_helpers import CANARY, DB, job_config, params, published

from ansible_collections.sesdf.esus.plugins.module_utils import _fsutil
from ansible_collections.sesdf.esus.plugins.module_utils import pec_archive as pa
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


@pytest.mark.nt("NT-inapta-4")
@pytest.mark.parametrize("failure", ["wrong_password", "database_down"])
def test_failures_publish_nothing_and_keep_older_backups(source, tmp_path, failure):
    older = pb.run_backup(params(source, tmp_path, label="older"))
    before = published(tmp_path)
    over = {"db_password": "wrong-password"} if failure == "wrong_password" else {"db_port": 1}
    with pytest.raises(PecError) as err:
        pb.run_backup(params(source, tmp_path, **over))
    if failure == "wrong_password":
        assert "wrong password" in err.value.msg
    else:
        assert "not accepting connections" in err.value.msg
    assert published(tmp_path) == before
    assert [p for p in os.listdir(tmp_path) if p.startswith(pa.TMP_PREFIX)] == []
    assert _fsutil.sha256_file(older["path"]) == older["sha256"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_publishes_nothing_and_keeps_older_backup(source, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        older = mnt / "older.pgdump.zst"
        older.write_bytes(b"x" * 1000)
        st = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 16 * 1024))
        with pytest.raises(PecError, match="full .no space left on device"):
            pb.run_backup(params(source, mnt))
        assert sorted(os.listdir(mnt)) == [pb.LOCK_NAME, "filler", "older.pgdump.zst"]
        assert older.read_bytes() == b"x" * 1000
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _job(config, *extra):
    lib = os.environ.get("PYTHONPATH", "")
    code = (
        "import sys; from ansible_collections.sesdf.esus.plugins.module_utils.pec_backup import cli_main; "
        "sys.exit(cli_main(sys.argv[1:]))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, "--config", str(config), *extra],
        env=dict(os.environ, PYTHONPATH=lib),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigkill_mid_dump_publishes_nothing_and_next_run_cleans_up(source, tmp_path, monkeypatch):
    dest = tmp_path / "dest"
    dest.mkdir(mode=0o700)
    config = tmp_path / "backup.json"
    config.write_text(json.dumps(job_config(source, dest, tmp_path / "e-SUS")))
    conn = {k: source[k] for k in ("host", "port", "user", "password")}
    locker = subprocess.Popen(
        [
            f"{source['bin_dir']}/psql",
            "-h",
            source["host"],
            "-p",
            str(source["port"]),
            "-U",
            "postgres",
            "-d",
            DB,
            "-c",
            "BEGIN; LOCK TABLE tb_atend IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30);",
        ],
        env=dict(os.environ, PGPASSWORD=conn["password"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)
        job = _job(config)
        deadline = time.time() + 20
        while time.time() < deadline and not any(p.startswith(pa.TMP_PREFIX) for p in os.listdir(dest)):
            time.sleep(0.1)
        assert any(p.startswith(pa.TMP_PREFIX) for p in os.listdir(dest)), "the dump never started"
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
    finally:
        locker.kill()
        locker.wait()
    time.sleep(0.5)
    assert published(dest) == []
    again = _job(config)
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    files = published(dest)
    assert len([f for f in files if f.endswith(".pgdump.zst")]) == 1
    assert not any(p.startswith(pa.TMP_PREFIX) for p in os.listdir(dest))
    status = json.loads(open(str(dest) + ".status.json").read())
    assert status["last_result"] == "ok" and status["verified"] is True


def test_password_never_on_a_command_line(source, tmp_path, monkeypatch):
    seen = []
    real_popen = subprocess.Popen.__init__

    def spy(self, args, *a, **kw):
        seen.append((list(args), dict(kw.get("env") or {})))
        return real_popen(self, args, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    pb.run_backup(params(source, tmp_path, verify_level="restore"))
    assert seen
    for cmd, env in seen:
        assert not any(CANARY in str(part) for part in cmd)
        assert CANARY not in "".join(env.values()) and "PGPASSWORD" not in env
    assert not any(
        CANARY in open(os.path.join(tmp_path, f), errors="ignore").read()
        for f in os.listdir(tmp_path)
        if f.endswith((".json", ".sha256"))
    )


def test_check_mode_writes_nothing(source, tmp_path):
    dest = tmp_path / "never"
    result = pb.run_backup(params(source, dest), check_mode=True)
    assert result["changed"] and result.get("would") and not dest.exists()


def test_reuse_of_a_recent_verified_backup_is_not_a_change(source, tmp_path):
    first = pb.run_backup(params(source, tmp_path, reuse_within_minutes=60))
    second = pb.run_backup(params(source, tmp_path, reuse_within_minutes=60))
    assert second["reused"] and not second["changed"] and second["path"] == first["path"]
