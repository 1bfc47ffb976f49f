"""pec_backup core against a real PostgreSQL: round trip, damaged archives, failures that must publish nothing,
retention, off-host retry and the password never reaching a command line."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import _fsutil
from ansible_collections.sesdf.esus.plugins.module_utils import pec_archive as pa
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils import pec_offhost as poff
from ansible_collections.sesdf.esus.plugins.module_utils import pec_restore as pres
from ansible_collections.sesdf.esus.plugins.module_utils import pec_retention as pret
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

DB = "esus_unit"
CANARY = "Canary-Pw-7f3a91"


@pytest.fixture(scope="module")
def source(pg_server):
    conn = {k: pg_server[k] for k in ("host", "port", "user", "password")}
    with PgClient(pg_server["bin_dir"], dict(conn, name="postgres")) as client:
        client.query(f"DROP DATABASE IF EXISTS {DB}")
        client.query(f"CREATE DATABASE {DB}")
        client.query("DROP ROLE IF EXISTS canary_user")
        client.query(f"CREATE ROLE canary_user LOGIN SUPERUSER PASSWORD '{CANARY}'")
    with PgClient(pg_server["bin_dir"], dict(conn, name=DB)) as client:
        client.query(
            "CREATE TABLE tb_cidadao (co_seq_cidadao bigserial PRIMARY KEY, no_cidadao text, dt_nascimento date,"
            " ds_obs text, bin bytea);"
            "INSERT INTO tb_cidadao (no_cidadao, dt_nascimento, ds_obs, bin) SELECT 'Cidadão ' || g,"
            " date '1950-01-01' + g, repeat(md5(g::text), 20), decode(md5(g::text), 'hex')"
            " FROM generate_series(1, 20000) g;"
            "CREATE TABLE tb_atend (co_seq_atend bigserial PRIMARY KEY, co_cidadao bigint REFERENCES tb_cidadao,"
            " dt_atend timestamp); INSERT INTO tb_atend (co_cidadao, dt_atend) SELECT g, now() FROM"
            " generate_series(1, 5000) g; CREATE TABLE tb_config_sistema (co_config_sistema text primary key,"
            " ds_texto text); INSERT INTO tb_config_sistema VALUES ('VERSAOBANCODADOS', '4.2.8')"
        )
    return dict(pg_server, name=DB)


def params(server, dest, **over):
    p = {
        "pec_root": "/nonexistent",
        "pec_config_path": "/nonexistent/pec.config",
        "pg_bin_dir": server["bin_dir"],
        "db_host": server["host"],
        "db_port": server["port"],
        "db_name": server["name"],
        "db_user": "canary_user",
        "db_password": CANARY,
        "dest_dir": str(dest),
        "label": "unit",
        "verify_level": "full_read",
        "status_path": str(dest) + ".status.json",
    }
    p.update(over)
    return p


def table_fingerprint(server, dbname):
    conn = {k: server[k] for k in ("host", "port", "user", "password")}
    with PgClient(server["bin_dir"], dict(conn, name=dbname)) as client:
        out = {}
        for table in ("tb_cidadao", "tb_atend", "tb_config_sistema"):
            out[table] = client.query(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"  # noqa: S608 - fixed table names
            )[0]
        return out


def published(dest):
    return sorted(p for p in os.listdir(dest) if not p.startswith("."))


def test_round_trip_restores_equal_rows_and_hashes(source, tmp_path):
    result = pb.run_backup(params(source, tmp_path / "b", verify_level="restore"))
    assert result["verified"] and result["changed"]
    path = result["path"]
    assert os.path.basename(path).startswith(f"{DB}_unit_") and path.endswith(".pgdump.zst")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(tmp_path / "b").st_mode & 0o777) == "0o700"
    assert pa.read_sha_sidecar(path) == result["sha256"] == _fsutil.sha256_file(path)
    manifest = json.loads(open(result["manifest"]).read())
    assert manifest["verified"] is True and manifest["verify_level"] == "restore"
    assert manifest["verification"]["restore"]["mismatches"] == {}
    restored = pres.run_restore(params(source, tmp_path / "b", path=path, target_db="esus_roundtrip"))
    assert restored["changed"] and restored["target_db"] == "esus_roundtrip"
    assert table_fingerprint(source, "esus_roundtrip") == table_fingerprint(source, DB)


def test_restore_over_live_database_swaps_only_after_full_restore(source, tmp_path):
    result = pb.run_backup(params(source, tmp_path))
    p = params(source, tmp_path, path=result["path"], db_name="esus_swap", require_app_stopped=False)
    pres.run_restore(dict(p, target_db="esus_swap"))  # make a live "esus_swap" to replace
    before = table_fingerprint(source, "esus_swap")
    check = pres.run_restore(p, check_mode=True)
    assert check["changed"] and "swap" in check["would"]
    out = pres.run_restore(dict(p, keep_previous=True))
    assert out["swapped"] and out["previous_db"].startswith("esus_swap_pre_restore_")
    assert table_fingerprint(source, "esus_swap") == before
    # a damaged archive is refused before anything is touched
    bad = tmp_path / "bad.pgdump.zst"
    data = bytearray(open(result["path"], "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(PecError, match="checksum mismatch"):
        pres.run_restore(dict(p, path=str(bad), sha256=result["sha256"]))
    assert table_fingerprint(source, "esus_swap") == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "wrong_checksum"])
def test_damaged_archives_are_detected(source, tmp_path, damage):
    result = pb.run_backup(params(source, tmp_path))
    path = result["path"]
    data = bytearray(open(path, "rb").read())
    expected = result["sha256"]
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x01
    else:
        expected = "0" * 64
    open(path, "wb").write(bytes(data))
    check = pa.verify_archive(path, os.path.join(source["bin_dir"], "pg_restore"), pa.find_tool("zstd"), expected)
    assert check["ok"] is False
    assert not check["checksum_ok"]
    if damage != "wrong_checksum":
        # without any recorded checksum the full read alone still catches it
        alone = pa.verify_archive(path, os.path.join(source["bin_dir"], "pg_restore"), pa.find_tool("zstd"))
        assert alone["full_read_ok"] is False and alone["ok"] is False


def test_pg_restore_list_alone_would_pass_a_truncated_plain_dump(source, tmp_path):
    """Why the full read exists (pec-facts.md): --list passes on a dump cut in half; verify_archive fails it."""
    raw = tmp_path / "raw.backup"
    env = dict(os.environ, PGPASSWORD=source["password"])
    subprocess.run(
        [
            f"{source['bin_dir']}/pg_dump",
            "-Fc",
            "-h",
            source["host"],
            "-p",
            str(source["port"]),
            "-U",
            "postgres",
            "-f",
            str(raw),
            DB,
        ],
        check=True,
        env=env,
    )
    data = raw.read_bytes()
    raw.write_bytes(data[: len(data) // 2])
    listing = subprocess.run([f"{source['bin_dir']}/pg_restore", "--list", str(raw)], capture_output=True, check=False)
    assert listing.returncode == 0
    check = pa.verify_archive(str(raw), os.path.join(source["bin_dir"], "pg_restore"))
    assert check["format"] == "custom" and check["full_read_ok"] is False


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
    config.write_text(json.dumps(params(source, dest)))
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


def _entry(day, hour=2):
    return {
        "path": f"/b/{day}-{hour}",
        "verified": True,
        "created_at": datetime.datetime(2026, 1, 1, hour, tzinfo=datetime.UTC) + datetime.timedelta(days=day),
    }


def test_retention_over_40_days_keeps_daily_weekly_and_newest():
    backups = []
    for day in range(40):
        backups.insert(0, _entry(day))
        keep, _delete = pret.plan_retention(backups, daily=7, weekly=4)
        assert backups[0] in keep
        assert len(keep) >= min(2, len(backups))
        backups = [b for b in backups if b in keep]
    days = sorted({b["created_at"].date() for b in backups})
    assert len(days) <= 7 + 4
    assert days[-7:] == [
        d.date() for d in (backups[0]["created_at"] - datetime.timedelta(days=i) for i in range(6, -1, -1))
    ]
    assert (days[-1] - days[0]).days >= 21  # weekly copies reach back ~4 weeks


def test_retention_never_below_two_and_never_the_newest():
    backups = [_entry(3), _entry(2), _entry(1)]
    keep, delete = pret.plan_retention(backups, daily=0, weekly=0)
    assert [b["path"] for b in keep] == ["/b/3-2", "/b/2-2"]
    assert [b["path"] for b in delete] == ["/b/1-2"]


def test_retention_with_real_runs_over_simulated_days(source, tmp_path):
    base = datetime.datetime(2026, 3, 1, 2, tzinfo=datetime.UTC)
    p = params(source, tmp_path, keep_daily=3, keep_weekly=2)
    for day in range(12):
        _result, error = pb.backup_run(p, now=base + datetime.timedelta(days=day))
        assert error is None
    names = [os.path.basename(b["path"]) for b in pa.list_backups(str(tmp_path), label="unit")]
    assert len(names) <= 5 and names[0].startswith(f"{DB}_unit_20260312")
    for b in pa.list_backups(str(tmp_path)):
        assert os.path.exists(b["path"] + ".sha256") and os.path.exists(b["path"] + ".manifest.json")


def test_offhost_mount_down_then_back_is_pushed_on_the_next_run(source, tmp_path):
    share = tmp_path / "share"
    p = params(
        source,
        tmp_path / "b",
        offhost_enabled=True,
        offhost_method="mount",
        offhost_dest=str(share),
        offhost_require_mount=False,
    )
    result, error = pb.backup_run(p)
    assert error is None and result["offhost"]["state"] == "failed"
    status = json.loads(open(p["status_path"]).read())
    assert status["offhost"]["state"] == "failed" and status["last_result"] == "ok"
    share.mkdir()
    # next run: the backup itself fails (database down) but the pending copy still goes out
    _result2, error2 = pb.backup_run(dict(p, db_port=1))
    assert error2 is not None
    status = json.loads(open(p["status_path"]).read())
    assert status["offhost"]["state"] == "ok" and status["last_result"] == "failed"
    copy = share / os.path.basename(result["path"])
    assert _fsutil.sha256_file(str(copy)) == result["sha256"]
    assert status["last_success"] == result["created_at"]


def test_offhost_copy_resumes_a_cut_transfer(tmp_path):
    src = tmp_path / "a.pgdump.zst"
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    share = tmp_path / "share"
    share.mkdir()
    (share / (pa.TMP_PREFIX + src.name)).write_bytes(src.read_bytes()[: 1024 * 1024])
    out = poff.push_mount(str(src), _fsutil.sha256_file(str(src)), str(share), require_mount=False)
    assert out["resumed_from"] == 1024 * 1024
    assert (share / src.name).read_bytes() == src.read_bytes()


@pytest.mark.skipif(not os.path.exists("/usr/bin/age"), reason="age not installed on this machine")
def test_offhost_copy_encrypted_to_a_public_key(source, tmp_path):
    keys = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
    recipient = next(line.split(": ")[1] for line in keys.splitlines() if "public key" in line)
    share = tmp_path / "share"
    share.mkdir()
    p = params(
        source,
        tmp_path / "b",
        offhost_enabled=True,
        offhost_method="mount",
        offhost_dest=str(share),
        offhost_require_mount=False,
        offhost_encrypt_recipient=recipient,
    )
    result, error = pb.backup_run(p)
    assert error is None and result["offhost"]["state"] == "ok"
    copy = share / (os.path.basename(result["path"]) + ".age")
    assert copy.read_bytes()[:21] == b"age-encryption.org/v1"


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


def test_bad_label_and_unknown_file():
    with pytest.raises(PecError, match="label"):
        pa.validate_label("../etc")
    with pytest.raises(PecError, match="does not exist"):
        pa.sniff_format("/nonexistent/file")
