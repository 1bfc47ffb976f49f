# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verified backups of the PEC database: dump, checksum, full-read verification, restore, retention,
off-host copies and the status fact file.

ONE implementation, used by the modules (pec_backup, pec_backup_verify, pec_restore) and, copied verbatim
by the backup_schedule role, by the scheduled job on servers without Ansible (see ``cli_main``).
Standard library only (plus the sibling module_utils pec_common, pec_db, pec_install).

Archive format: ``pg_dump -Fc -Z0`` (custom format, uncompressed) streamed through ``zstd -T0`` (with its
content checksum). The archive is written to a hidden temporary name in the destination directory and
published by rename only after pg_dump and zstd exited 0, the archive was fsynced, a verification pass read
it whole (sha256 of the bytes on disk, zstd frame checksum, ``pg_restore -f /dev/null`` of every entry)
and its ``.sha256`` and ``.manifest.json`` were written beside it.
"""

from __future__ import annotations

import ctypes
import datetime
import errno
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient, classify_error, sql_literal
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PGDMP_MAGIC = b"PGDMP"
ARCHIVE_SUFFIX = ".pgdump.zst"
SHA_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.json"
TMP_PREFIX = ".tmp-"
LOCK_NAME = ".sesdf-esus-backup.lock"
STAGE_DIR = ".offhost"
CHUNK = 1 << 20
DEFAULT_FACT = "/etc/ansible/facts.d/sesdf_esus_backup.fact"
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME_RE = re.compile(r"^(?P<db>[A-Za-z0-9_]+)_(?P<label>[A-Za-z0-9._-]+)_(?P<ts>\d{8}T\d{6}Z)\.pgdump\.zst$")


# --------------------------------------------------------------------------------------------- helpers
def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def parse_iso(text):
    if not text:
        return None
    text = str(text).strip().replace("Z", "+00:00")
    dt = datetime.datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc)


def archive_name(db_name, label, when):
    return f"{db_name}_{label}_{when.strftime('%Y%m%dT%H%M%SZ')}{ARCHIVE_SUFFIX}"


def validate_label(label):
    if not _LABEL_RE.match(label or ""):
        raise PecError(
            f"backup label {label!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-' "
            "(it becomes part of the file name)"
        )
    return label


def _set_pdeathsig():
    """Children die with the backup process (SIGKILL of the job must not leave pg_dump writing)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, text, mode=0o600):
    """Write a small file under a temporary name in the same directory, fsync, rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(directory)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sha_sidecar(path):
    """The checksum recorded beside an archive (``<archive>.sha256``, sha256sum format), or None."""
    side = path + SHA_SUFFIX
    if not os.path.exists(side):
        return None
    with open(side, encoding="utf-8") as handle:
        text = handle.read().strip()
    value = text.split()[0].lower() if text else ""
    if not re.match(r"^[0-9a-f]{64}$", value):
        raise PecError(f"{side} does not hold a sha256 checksum; the checksum file is damaged")
    return value


def sniff_format(path):
    """'zstd' (this collection's archives), 'custom' (plain pg_dump -Fc, e.g. the installer's) or error."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except FileNotFoundError as exc:
        raise PecError(f"backup file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise PecError(f"{path} is a directory, not a backup file") from exc
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(PGDMP_MAGIC):
        return "custom"
    raise PecError(
        f"{path} is neither a zstd-compressed PostgreSQL archive nor a pg_dump custom-format archive "
        f"(first bytes {head[:8].hex() or 'empty'}); it is not a backup this collection can restore"
    )


def _tail(path, limit=2000):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return ""
    return text[-limit:].strip()


def find_tool(name, configured=None):
    if configured:
        if os.access(configured, os.X_OK):
            return configured
        raise PecError(f"{name} not found or not executable at {configured}")
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/local/bin:/usr/bin:/bin")
    if not found:
        raise PecError(
            f"{name} is not installed on this server; install the package {name} (Debian: apt install {name})"
        )
    return found


def _disk_full(*texts):
    low = " ".join(t or "" for t in texts).lower()
    return "no space left on device" in low or "disk full" in low


# --------------------------------------------------------------------------------- verification / read
def stream_archive(path, fmt, zstd, sink_cmd, env, stderr_dir, hash_it=True):
    """Read ``path`` whole once: sha256 of its bytes, ``zstd -dc`` (for zstd archives) into ``sink_cmd``.

    Returns dict(sha256, size_bytes, ok, error).
    """
    digest = hashlib.sha256()
    size = 0
    zerr_path = os.path.join(stderr_dir, "zstd-d.err")
    serr_path = os.path.join(stderr_dir, "sink.err")
    with open(zerr_path, "wb") as zerr, open(serr_path, "wb") as serr:
        if fmt == "zstd":
            dec = subprocess.Popen(
                [zstd, "-d", "-c", "-q"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=zerr,
                preexec_fn=_set_pdeathsig,
            )
            sink = subprocess.Popen(
                sink_cmd, stdin=dec.stdout, stdout=subprocess.DEVNULL, stderr=serr, env=env, preexec_fn=_set_pdeathsig
            )
            dec.stdout.close()
            feed = dec.stdin
        else:
            dec = None
            sink = subprocess.Popen(
                sink_cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=serr,
                env=env,
                preexec_fn=_set_pdeathsig,
            )
            feed = sink.stdin
        broken = False
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(CHUNK), b""):
                    size += len(block)
                    if hash_it:
                        digest.update(block)
                    if not broken:
                        try:
                            feed.write(block)
                        except BrokenPipeError:
                            broken = True
        finally:
            try:
                feed.close()
            except BrokenPipeError:
                pass
        dec_rc = dec.wait() if dec else 0
        sink_rc = sink.wait()
    errors = []
    if dec and dec_rc != 0:
        errors.append(f"zstd could not decompress it ({_tail(zerr_path) or 'rc=' + str(dec_rc)})")
    if sink_rc != 0:
        errors.append(f"{os.path.basename(sink_cmd[0])} failed ({_tail(serr_path) or 'rc=' + str(sink_rc)})")
    return {
        "sha256": digest.hexdigest() if hash_it else None,
        "size_bytes": size,
        "ok": not errors,
        "error": "; ".join(errors) or None,
        "stderr": _tail(serr_path),
    }


def verify_archive(path, pg_restore, zstd=None, expected_sha256=None, env=None):
    """Checksum and full read of an archive. Never raises for a bad archive: returns the findings."""
    fmt = sniff_format(path)
    if fmt == "zstd" and not zstd:
        raise PecError("zstd is needed to read this archive; install the zstd package")
    work = tempfile.mkdtemp(prefix="sesdf-esus-verify-")
    try:
        started = time.monotonic()
        sink = [pg_restore, "-f", "/dev/null"] + ([] if fmt == "zstd" else ["-Fc"])
        read = stream_archive(path, fmt, zstd, sink, env or _clean_env(), work)
        checksum_ok = expected_sha256 is None or read["sha256"] == expected_sha256
        problems = []
        if not checksum_ok:
            problems.append(
                f"checksum mismatch: the file's sha256 is {read['sha256']} but {expected_sha256} was recorded; "
                "the file was changed or damaged after it was made"
            )
        if not read["ok"]:
            problems.append(f"full read failed: {read['error']}; the archive is truncated or corrupt")
        return {
            "path": path,
            "format": fmt,
            "sha256": read["sha256"],
            "expected_sha256": expected_sha256,
            "checksum_ok": checksum_ok,
            "full_read_ok": read["ok"],
            "size_bytes": read["size_bytes"],
            "ok": checksum_ok and read["ok"],
            "problems": problems,
            "duration_s": round(time.monotonic() - started, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return env


# ---------------------------------------------------------------------------------- database helpers
COUNT_SQL = (
    "SELECT n.nspname || '.' || c.relname, "
    "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), "
    "false, true, '')))[1]::text "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1"
)


def row_counts(client, dbname=None):
    return {name: int(count) for name, count in client.query(COUNT_SQL, dbname=dbname, record=False)}


def quote_ident(name):
    return '"' + str(name).replace('"', '""') + '"'


def database_exists(client, name, maintenance_db):
    return client.scalar(f"SELECT 1 FROM pg_database WHERE datname = {sql_literal(name)}", dbname=maintenance_db) == "1"


def create_database_like(client, name, like, maintenance_db):
    row = client.query(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
        f"WHERE datname = {sql_literal(like)}",
        dbname=maintenance_db,
    )
    opts = ""
    if row:
        enc, collate, ctype = row[0]
        opts = f" ENCODING {sql_literal(enc)} LC_COLLATE {sql_literal(collate)} LC_CTYPE {sql_literal(ctype)}"
    client.query(f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0{opts}", dbname=maintenance_db)


def drop_database(client, name, maintenance_db):
    client.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = {sql_literal(name)} AND pid <> pg_backend_pid()",
        dbname=maintenance_db,
    )
    client.query(f"DROP DATABASE IF EXISTS {quote_ident(name)}", dbname=maintenance_db)


def restore_into(client, path, fmt, target_db, zstd=None, single_transaction=True, extra_args=None):
    """pg_restore an archive into an existing, empty database. Raises PecError on failure."""
    pg_restore = client.tool("pg_restore")
    cmd = [pg_restore, "--exit-on-error", "-w", "-d", target_db, *list(extra_args or [])]
    if single_transaction:
        cmd.append("-1")
    work = tempfile.mkdtemp(prefix="sesdf-esus-restore-")
    try:
        if fmt == "zstd":
            read = stream_archive(path, fmt, zstd, cmd, client.env(), work, hash_it=False)
            ok, err = read["ok"], read["error"]
        else:
            errp = os.path.join(work, "err")
            with open(errp, "wb") as err_handle:
                proc = subprocess.run(
                    [*cmd, "-Fc", path], stdout=subprocess.DEVNULL, stderr=err_handle, env=client.env(), check=False
                )
            ok, err = proc.returncode == 0, _tail(errp)
        if not ok:
            raise PecError(
                f"pg_restore into {target_db} failed: {classify_error(err, dict(client.conn, name=target_db))}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def restore_test(client, path, fmt, zstd, source_counts_before, source_counts_after, maintenance_db):
    """Restore into a scratch database, compare per-table row counts with the source, drop the scratch."""
    scratch = f"sesdf_verify_{os.getpid()}_{int(time.time())}"
    started = time.monotonic()
    create_database_like(client, scratch, client.conn["name"], maintenance_db)
    try:
        restore_into(client, path, fmt, scratch, zstd=zstd)
        restored = row_counts(client, dbname=scratch)
    finally:
        drop_database(client, scratch, maintenance_db)
    changed = sorted(t for t in source_counts_after if source_counts_before.get(t) != source_counts_after.get(t))
    mismatches = {}
    for table, count in source_counts_after.items():
        if table in changed:
            continue
        if restored.get(table) != count:
            mismatches[table] = {"source": count, "restored": restored.get(table)}
    for table in restored:
        if table not in source_counts_after:
            mismatches[table] = {"source": None, "restored": restored[table]}
    return {
        "ok": not mismatches and (bool(restored) or not source_counts_after),
        "tables": len(restored),
        "rows": sum(restored.values()),
        "mismatches": mismatches,
        "changed_during_dump": changed,
        "duration_s": round(time.monotonic() - started, 3),
    }


# ---------------------------------------------------------------------------------------- the backup
class DestLock:
    """Exclusive lock of a backup directory: one backup run at a time; stale temporaries are then safe to remove."""

    def __init__(self, directory):
        self.path = os.path.join(directory, LOCK_NAME)
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            self.fd = None
            raise PecError(
                f"another backup is running in {os.path.dirname(self.path)} (lock {self.path} is held); "
                "wait for it to finish and run again"
            ) from exc
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def clean_stale_temporaries(directory):
    """Remove temporaries left by a killed run. Call only while holding DestLock."""
    removed = []
    for path in glob.glob(os.path.join(directory, TMP_PREFIX + "*")):
        _unlink(path)
        removed.append(path)
    return removed


def ensure_dest_dir(directory, create=True):
    if not os.path.isdir(directory):
        if not create:
            raise PecError(f"backup directory {directory} does not exist")
        os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)


def list_backups(directory, label=None):
    """Published backups in a directory (newest first), from their manifests (or names)."""
    found = []
    for path in glob.glob(os.path.join(directory, "*" + ARCHIVE_SUFFIX)):
        name = os.path.basename(path)
        match = _NAME_RE.match(name)
        if not match:
            continue
        manifest = {}
        mpath = path + MANIFEST_SUFFIX
        if os.path.exists(mpath):
            try:
                with open(mpath, encoding="utf-8") as handle:
                    manifest = json.load(handle)
            except (OSError, ValueError):
                manifest = {}
        created = parse_iso(manifest.get("created_at")) or datetime.datetime.strptime(
            match.group("ts"), "%Y%m%dT%H%M%SZ"
        ).replace(tzinfo=datetime.timezone.utc)
        entry = {
            "path": path,
            "label": manifest.get("label", match.group("label")),
            "created_at": created,
            "verified": bool(manifest.get("verified")),
            "sha256": manifest.get("sha256"),
            "size_bytes": manifest.get("size_bytes", os.path.getsize(path)),
            "verify_level": manifest.get("verify_level"),
            "manifest": mpath if os.path.exists(mpath) else None,
        }
        if label is None or entry["label"] == label:
            found.append(entry)
    found.sort(key=lambda e: e["created_at"], reverse=True)
    return found


def plan_backup(params):
    """Resolve everything a backup needs (no database access). Returns a dict used by run_backup."""
    install = PecInstall(params)
    label = validate_label(params.get("label") or "manual")
    verify_level = params.get("verify_level") or "full_read"
    if verify_level not in ("full_read", "restore"):
        raise PecError(f"verify_level must be full_read or restore, not {verify_level!r}")
    return {
        "install": install,
        "dest_dir": params["dest_dir"],
        "label": label,
        "verify_level": verify_level,
        "zstd": find_tool("zstd", params.get("zstd_path")),
        "level": int(params.get("compress_level") or 3),
        "threads": int(params.get("compress_threads") or 0),
        "extra_args": list(params.get("pg_dump_extra_args") or []),
        "maintenance_db": params.get("maintenance_db") or "postgres",
    }


def _dump_to(client, tmp_path, plan):
    """pg_dump -Fc -Z0 | zstd -T<n> -<level> -o tmp_path. Raises PecError with a clear cause."""
    pg_dump = client.tool("pg_dump")
    work = tempfile.mkdtemp(prefix="sesdf-esus-dump-")
    try:
        derr_path = os.path.join(work, "pg_dump.err")
        zerr_path = os.path.join(work, "zstd.err")
        with open(derr_path, "wb") as derr, open(zerr_path, "wb") as zerr:
            dump = subprocess.Popen(
                [pg_dump, "-Fc", "-Z0", *plan["extra_args"], *client.conn_args()],
                stdout=subprocess.PIPE,
                stderr=derr,
                env=client.env(),
                preexec_fn=_set_pdeathsig,
            )
            comp = subprocess.Popen(
                [plan["zstd"], f"-{plan['level']}", f"-T{plan['threads']}", "-q", "-f", "-o", tmp_path],
                stdin=dump.stdout,
                stdout=subprocess.DEVNULL,
                stderr=zerr,
                preexec_fn=_set_pdeathsig,
            )
            dump.stdout.close()
            comp_rc = comp.wait()
            if comp_rc != 0 and dump.poll() is None:
                dump.kill()
            dump_rc = dump.wait()
        derr_text, zerr_text = _tail(derr_path), _tail(zerr_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if dump_rc == 0 and comp_rc == 0:
        return
    if _disk_full(derr_text, zerr_text):
        raise PecError(
            f"the backup directory {plan['dest_dir']} is full (no space left on device) while writing the dump; "
            "free space there or choose another backup_dest_dir; nothing was published and older backups are intact"
        )
    if dump_rc != 0:
        raise PecError(f"pg_dump failed: {classify_error(derr_text, client.conn)}; nothing was published")
    raise PecError(
        f"zstd failed while compressing the dump ({zerr_text or 'rc=' + str(comp_rc)}); nothing was published"
    )


def run_backup(params, check_mode=False, now=None):
    """Make one verified backup. Returns the result dict (see the pec_backup module's RETURN)."""
    plan = plan_backup(params)
    install = plan["install"]
    dest = plan["dest_dir"]
    started_at = now or utcnow()
    t0 = time.monotonic()
    bin_dir = install.pg_bin_dir()
    conn = install.connection()
    reuse_minutes = int(params.get("reuse_within_minutes") or 0)
    name = archive_name(conn["name"], plan["label"], started_at)
    final = os.path.join(dest, name)
    result = {
        "path": final,
        "sha256": None,
        "size_bytes": None,
        "verified": False,
        "verify_level": plan["verify_level"],
        "manifest": final + MANIFEST_SUFFIX,
        "created_at": iso(started_at),
        "label": plan["label"],
        "database": {k: conn[k] for k in ("host", "port", "name", "user")},
        "duration_s": None,
        "verification": None,
        "reused": False,
        "changed": False,
        "removed_temporaries": [],
    }
    if reuse_minutes > 0 and os.path.isdir(dest):
        for entry in list_backups(dest, label=plan["label"]):
            age = (started_at - entry["created_at"]).total_seconds() / 60
            if entry["verified"] and 0 <= age <= reuse_minutes:
                check = verify_archive(
                    entry["path"],
                    os.path.join(bin_dir, "pg_restore"),
                    plan["zstd"],
                    expected_sha256=read_sha_sidecar(entry["path"]),
                )
                if check["ok"]:
                    result.update(
                        path=entry["path"],
                        sha256=check["sha256"],
                        size_bytes=check["size_bytes"],
                        verified=True,
                        verify_level=entry["verify_level"] or "full_read",
                        manifest=entry["manifest"],
                        created_at=iso(entry["created_at"]),
                        verification=check,
                        reused=True,
                    )
                    result["duration_s"] = round(time.monotonic() - t0, 3)
                    return result
    if check_mode:
        with PgClient(bin_dir, conn, timeout=30) as client:
            size = client.scalar("SELECT pg_database_size(current_database())")
        result["changed"] = True
        result["would"] = (
            f"dump {conn['name']} ({int(size)} bytes in the database) to {final} with pg_dump -Fc -Z0 "
            f"| zstd, checksum it, verify ({plan['verify_level']}) and publish it"
        )
        return result
    ensure_dest_dir(dest)
    with DestLock(dest):
        result["removed_temporaries"] = clean_stale_temporaries(dest)
        tmp = os.path.join(dest, f"{TMP_PREFIX}{name}.{os.getpid()}")
        try:
            with PgClient(bin_dir, conn, timeout=int(params.get("db_timeout") or 600)) as client:
                client.scalar("SELECT 1")  # clear message for a stopped database or wrong password
                counts_before = row_counts(client) if plan["verify_level"] == "restore" else None
                _dump_to(client, tmp, plan)
                os.chmod(tmp, 0o600)
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
                check = verify_archive(tmp, client.tool("pg_restore"), plan["zstd"], env=client.env())
                result["verification"] = check
                if not check["ok"]:
                    raise PecError(
                        f"the new backup failed verification ({'; '.join(check['problems'])}); "
                        "nothing was published; check the disk and run again"
                    )
                if plan["verify_level"] == "restore":
                    counts_after = row_counts(client)
                    test = restore_test(
                        client, tmp, "zstd", plan["zstd"], counts_before, counts_after, plan["maintenance_db"]
                    )
                    result["verification"]["restore"] = test
                    if not test["ok"]:
                        raise PecError(
                            f"restore test of the new backup failed: row counts differ {test['mismatches']}; "
                            "nothing was published"
                        )
            check["path"] = final
            result["sha256"] = check["sha256"]
            result["size_bytes"] = check["size_bytes"]
            result["verified"] = True
            result["duration_s"] = round(time.monotonic() - t0, 3)
            manifest = {
                "format": "sesdf.esus/pgdump-custom-zstd/1",
                "file": name,
                "path": final,
                "sha256": result["sha256"],
                "size_bytes": result["size_bytes"],
                "created_at": result["created_at"],
                "label": plan["label"],
                "database": result["database"],
                "verified": True,
                "verify_level": plan["verify_level"],
                "verification": result["verification"],
                "duration_s": result["duration_s"],
                "tools": {"pg_bin_dir": bin_dir, "zstd": plan["zstd"], "compress_level": plan["level"]},
            }
            write_atomic(final + SHA_SUFFIX, f"{result['sha256']}  {name}\n")
            write_atomic(final + MANIFEST_SUFFIX, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, final)
            fsync_dir(dest)
        except OSError as exc:
            _unlink(tmp)
            if exc.errno == errno.ENOSPC:
                raise PecError(
                    f"the backup directory {dest} is full (no space left on device); free space there or choose "
                    "another backup_dest_dir; nothing was published and older backups are intact"
                ) from exc
            raise PecError(f"backup to {dest} failed: {exc}; nothing was published") from exc
        except BaseException:
            _unlink(tmp)
            if not os.path.exists(final):
                _unlink(final + SHA_SUFFIX)
                _unlink(final + MANIFEST_SUFFIX)
            raise
    result["changed"] = True
    return result


# ----------------------------------------------------------------------------------------- restore
def run_restore(params, check_mode=False):
    """Restore a verified archive over the live database (scratch + swap) or into a named target database."""
    install = PecInstall(params)
    path = params["path"]
    fmt = sniff_format(path)
    zstd = find_tool("zstd", params.get("zstd_path")) if fmt == "zstd" else None
    expected = params.get("sha256") or read_sha_sidecar(path)
    if expected is None and not params.get("allow_unverified"):
        raise PecError(
            f"no checksum for {path} (no {path + SHA_SUFFIX} and no sha256 option); "
            "refusing to restore an archive whose integrity cannot be checked (allow_unverified: true overrides)"
        )
    if expected is not None:
        actual = sha256_file(path)
        if actual != expected.lower():
            raise PecError(
                f"checksum mismatch for {path}: sha256 is {actual}, expected {expected}; "
                "the archive is damaged: restore another backup. Nothing was changed"
            )
    bin_dir = install.pg_bin_dir()
    conn = install.connection()
    maint = params.get("maintenance_db") or "postgres"
    target = params.get("target_db") or conn["name"]
    swap = target == conn["name"]
    ts = utcnow().strftime("%Y%m%d%H%M%S")
    scratch = params.get("scratch_db") or f"{target}_new"
    previous = f"{target}_pre_restore_{ts}"
    result = {
        "path": path,
        "sha256": expected,
        "format": fmt,
        "target_db": target,
        "swapped": swap,
        "scratch_db": scratch if swap else None,
        "previous_db": None,
        "changed": False,
        "duration_s": None,
    }
    t0 = time.monotonic()
    with PgClient(bin_dir, conn, timeout=int(params.get("db_timeout") or 3600)) as client:
        exists = database_exists(client, target, maint)
        if not swap and exists and not params.get("replace_target"):
            raise PecError(f"target database {target} already exists; drop it or set replace_target: true")
        if swap and params.get("require_app_stopped", True):
            from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import service_state

            app = service_state(params.get("app_service") or "e-SUS-PEC.service")
            if app["active_state"] in ("active", "activating", "reloading"):
                raise PecError(
                    f"{app['name']} is running; stop it before restoring over {target} "
                    "(systemctl stop " + app["name"] + "). Nothing was changed"
                )
        if check_mode:
            result["changed"] = True
            result["would"] = (
                f"restore {path} into {scratch} then swap it with {target}"
                if swap
                else f"restore {path} into database {target}"
            )
            return result
        build = scratch if swap else target
        if database_exists(client, build, maint):
            drop_database(client, build, maint)
        if not swap and exists:
            drop_database(client, target, maint)
        create_database_like(
            client, build, conn["name"] if database_exists(client, conn["name"], maint) else "template0", maint
        )
        try:
            restore_into(
                client,
                path,
                fmt,
                build,
                zstd=zstd,
                single_transaction=params.get("single_transaction", True),
                extra_args=params.get("pg_restore_extra_args"),
            )
        except BaseException:
            drop_database(client, build, maint)
            raise
        result["row_counts"] = row_counts(client, dbname=build)
        if swap:
            if exists:
                client.query(f"ALTER DATABASE {quote_ident(target)} ALLOW_CONNECTIONS false", dbname=maint)
                client.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = {sql_literal(target)} AND pid <> pg_backend_pid()",
                    dbname=maint,
                )
                client.query(f"ALTER DATABASE {quote_ident(target)} RENAME TO {quote_ident(previous)}", dbname=maint)
                client.query(f"ALTER DATABASE {quote_ident(previous)} ALLOW_CONNECTIONS true", dbname=maint)
            client.query(f"ALTER DATABASE {quote_ident(build)} RENAME TO {quote_ident(target)}", dbname=maint)
            if exists:
                if params.get("keep_previous"):
                    result["previous_db"] = previous
                else:
                    drop_database(client, previous, maint)
    result["changed"] = True
    result["duration_s"] = round(time.monotonic() - t0, 3)
    return result


# -------------------------------------------------------------------------------------- retention
def plan_retention(backups, daily, weekly, min_keep=2):
    """Which backups to delete. backups: list_backups() entries (one label). Returns (keep, delete) lists.

    Keeps the newest verified backup of each of the last ``daily`` days that have one, then, among older
    days, the newest of each of ``weekly`` ISO weeks (weekly copies extend the history beyond the daily
    ones); the newest verified backup is always kept and never fewer than ``min_keep``.
    Unverified entries are never counted as keepers and never deleted here (they cannot exist published).
    """
    verified = sorted([b for b in backups if b["verified"]], key=lambda b: b["created_at"], reverse=True)
    keep = []
    days, weeks = [], []
    for b in verified:
        day = b["created_at"].date()
        if day not in days and len(days) < daily:
            days.append(day)
            keep.append(b)
    for b in verified:
        week = tuple(b["created_at"].isocalendar()[:2])
        if b in keep or week in weeks or b["created_at"].date() in days:
            continue
        if len(weeks) < weekly:
            weeks.append(week)
            keep.append(b)
    if verified and verified[0] not in keep:
        keep.insert(0, verified[0])
    for b in verified:
        if len(keep) >= min_keep:
            break
        if b not in keep:
            keep.append(b)
    delete = [b for b in verified if b not in keep]
    return keep, delete


def apply_retention(directory, label, daily, weekly, min_keep=2, check_mode=False):
    keep, delete = plan_retention(list_backups(directory, label=label), daily, weekly, min_keep)
    removed = []
    for b in delete:
        removed.append(b["path"])
        if not check_mode:
            for suffix in ("", SHA_SUFFIX, MANIFEST_SUFFIX):
                _unlink(b["path"] + suffix)
    if removed and not check_mode:
        fsync_dir(directory)
    return {"kept": [b["path"] for b in keep], "removed": removed}


# -------------------------------------------------------------------------------------- off-host copy
def stage_for_offhost(archive, dest_dir, recipient, age_path=None):
    """The file to push: the archive itself, or (with an age recipient) an encrypted copy staged beside it."""
    if not recipient:
        return archive, read_sha_sidecar(archive) or sha256_file(archive)
    stage_dir = os.path.join(dest_dir, STAGE_DIR)
    os.makedirs(stage_dir, mode=0o700, exist_ok=True)
    staged = os.path.join(stage_dir, os.path.basename(archive) + ".age")
    if os.path.exists(staged) and os.path.exists(staged + SHA_SUFFIX):
        return staged, read_sha_sidecar(staged)
    age = find_tool("age", age_path)
    tmp = os.path.join(stage_dir, TMP_PREFIX + os.path.basename(staged))
    with open(archive, "rb") as src, open(tmp, "wb") as out:
        proc = subprocess.run([age, "-r", recipient], stdin=src, stdout=out, stderr=subprocess.PIPE, check=False)
        out.flush()
        os.fsync(out.fileno())
    if proc.returncode != 0:
        _unlink(tmp)
        raise PecError(
            f"age could not encrypt the off-host copy: {proc.stderr.decode(errors='replace').strip()}; "
            "check backup_offhost_encrypt_recipient (an age public key, age1...)"
        )
    os.chmod(tmp, 0o600)
    digest = sha256_file(tmp)
    write_atomic(staged + SHA_SUFFIX, f"{digest}  {os.path.basename(staged)}\n")
    os.replace(tmp, staged)
    return staged, digest


def _copy_resumable(src, dest_dir):
    """Copy to dest_dir/.tmp-<name>, resuming a cut transfer (append from the partial's size)."""
    name = os.path.basename(src)
    partial = os.path.join(dest_dir, TMP_PREFIX + name)
    offset = os.path.getsize(partial) if os.path.exists(partial) else 0
    if offset > os.path.getsize(src):
        _unlink(partial)
        offset = 0
    with open(src, "rb") as fin, open(partial, "ab") as fout:
        fin.seek(offset)
        shutil.copyfileobj(fin, fout, CHUNK)
        fout.flush()
        os.fsync(fout.fileno())
    return partial, offset


def push_mount(src, digest, dest_dir, require_mount=True):
    if not os.path.isdir(dest_dir):
        raise PecError(
            f"off-host destination {dest_dir} is not available (not a directory); "
            "mount the share; the copy will be retried on the next run"
        )
    if require_mount and not os.path.ismount(dest_dir) and not _under_mount(dest_dir):
        raise PecError(
            f"off-host destination {dest_dir} is not a mounted share (nothing is mounted there); "
            "mount the share; the copy will be retried on the next run"
        )
    name = os.path.basename(src)
    final = os.path.join(dest_dir, name)
    if os.path.exists(final) and sha256_file(final) == digest:
        return {"path": final, "sha256": digest, "changed": False, "resumed_from": None}
    try:
        partial, offset = _copy_resumable(src, dest_dir)
        arrived = sha256_file(partial)
        if arrived != digest:
            _unlink(partial)
            raise PecError(
                f"off-host copy at {dest_dir} arrived with sha256 {arrived}, expected {digest}; "
                "the partial copy was removed; it will be retried on the next run"
            )
        with open(final + SHA_SUFFIX + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(f"{digest}  {name}\n")
        os.replace(final + SHA_SUFFIX + ".tmp", final + SHA_SUFFIX)
        os.replace(partial, final)
    except OSError as exc:
        raise PecError(f"off-host copy to {dest_dir} failed: {exc}; it will be retried on the next run") from exc
    return {"path": final, "sha256": digest, "changed": True, "resumed_from": offset or None}


def _under_mount(path):
    """True when path lies below a mount point other than / (a share mounted at a parent directory)."""
    probe = os.path.abspath(path)
    while probe != "/":
        if os.path.ismount(probe):
            return True
        probe = os.path.dirname(probe)
    return False


def push_rsync(src, digest, target, ssh_options=None, rsync_path=None, timeout=3600):
    """rsync over SSH (``user@host:/dir``), resumable (--partial-dir), checksum checked on arrival over SSH."""
    rsync = find_tool("rsync", rsync_path)
    host, sep, remote_dir = target.partition(":")
    if not sep or not remote_dir:
        raise PecError(f"rsync target {target!r} must look like user@host:/directory")
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", *(ssh_options or [])]
    name = os.path.basename(src)
    cmd = [
        rsync,
        "-t",
        "--partial-dir=.rsync-partial",
        "--chmod=F600",
        "-e",
        " ".join(ssh),
        src,
        f"{host}:{remote_dir.rstrip('/')}/",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise PecError(
            f"off-host copy to {target} failed (rsync rc={proc.returncode}: {_first(proc.stderr)}); "
            "it will be retried (and resumed) on the next run"
        )
    remote = f"{remote_dir.rstrip('/')}/{name}"
    check = subprocess.run(
        [*ssh, host, "sha256sum", remote], capture_output=True, text=True, timeout=timeout, check=False
    )
    arrived = check.stdout.split()[0] if check.returncode == 0 and check.stdout.split() else None
    if arrived != digest:
        raise PecError(
            f"off-host copy {host}:{remote} has sha256 {arrived}, expected {digest}; "
            "it will be sent again on the next run"
        )
    subprocess.run(
        [*ssh, host, "sh", "-c", f"'printf \"%s  %s\\n\" {digest} {name} > {remote}{SHA_SUFFIX}'"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return {"path": f"{host}:{remote}", "sha256": digest, "changed": True, "resumed_from": None}


def _first(text):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def push_offhost(archive, params, check_mode=False):
    """Push ``archive`` off the host by method mount|rsync. Returns {state, path, sha256, error}."""
    method = params.get("offhost_method")
    dest = params.get("offhost_dest")
    if check_mode:
        return {"state": "pending", "path": None, "sha256": None, "error": None, "destination": dest}
    try:
        src, digest = stage_for_offhost(
            archive, params["dest_dir"], params.get("offhost_encrypt_recipient"), params.get("age_path")
        )
        if method == "mount":
            pushed = push_mount(src, digest, dest, params.get("offhost_require_mount", True))
        elif method == "rsync":
            pushed = push_rsync(src, digest, dest, params.get("offhost_ssh_options"), params.get("rsync_path"))
        elif method == "controller":
            return {
                "state": "pending",
                "path": src,
                "sha256": digest,
                "error": None,
                "destination": dest,
                "staged": src,
            }
        else:
            raise PecError(f"unknown off-host method {method!r}: use mount, rsync or controller")
    except PecError as exc:
        return {"state": "failed", "path": None, "sha256": None, "error": exc.msg, "destination": dest}
    if src != archive:
        for suffix in ("", SHA_SUFFIX):
            _unlink(src + suffix)
    return {
        "state": "ok",
        "path": pushed["path"],
        "sha256": digest,
        "error": None,
        "destination": dest,
        "resumed_from": pushed.get("resumed_from"),
        "changed": pushed.get("changed", True),
    }


def pending_offhost(directory, label, last_pushed_path):
    """Newest verified backup not yet pushed (the retry after a destination was down)."""
    backups = [b for b in list_backups(directory, label=label) if b["verified"]]
    if not backups:
        return None
    newest = backups[0]
    if last_pushed_path and os.path.basename(last_pushed_path).startswith(os.path.basename(newest["path"])):
        return None
    return newest


# ---------------------------------------------------------------------------------- status fact file
def read_status(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_status(path, attempt_at, result=None, error=None, offhost=None, enabled_offhost=False, destination=None):
    """Update the status fact file (JSON) after a run; keeps the last success's details on failure."""
    if not path:
        return None
    status = read_status(path)
    status["last_attempt"] = iso(attempt_at)
    if result and result.get("verified") and not error:
        status.update(
            last_success=result["created_at"],
            last_result="ok",
            last_error=None,
            path=result["path"],
            size_bytes=result["size_bytes"],
            sha256=result["sha256"],
            verified=True,
            verify_level=result["verify_level"],
        )
    else:
        status.update(last_result="failed", last_error=error)
        status.setdefault("last_success", None)
        status.setdefault("verified", False)
    off = dict(status.get("offhost") or {})
    if not enabled_offhost:
        off = {"state": "disabled", "last_push": off.get("last_push"), "destination": destination or ""}
    elif offhost is not None:
        off["state"] = offhost["state"]
        off["destination"] = destination or ""
        off["error"] = offhost.get("error")
        if offhost["state"] == "ok":
            off["last_push"] = iso(attempt_at)
            off["path"] = offhost.get("path")
            off["sha256"] = offhost.get("sha256")
            off["pushed_backup"] = offhost.get("source")
        off.setdefault("last_push", None)
    status["offhost"] = off
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    write_atomic(path, json.dumps(status, indent=2, sort_keys=True) + "\n", mode=0o644)
    return status


def status_age_hours(status, now=None):
    last = parse_iso((status or {}).get("last_success")) if isinstance(status, dict) else None
    if last is None:
        return None
    return round(((now or utcnow()) - last).total_seconds() / 3600, 2)


# -------------------------------------------------------------------------- one full run (job + module)
def backup_run(params, check_mode=False, now=None):
    """Backup + off-host push (with retry of a pending one) + retention + status. Returns (result, error)."""
    attempt = now or utcnow()
    result, error = None, None
    offhost = None
    offhost_enabled = bool(params.get("offhost_enabled")) and params.get("offhost_method") in (
        "mount",
        "rsync",
        "controller",
    )
    try:
        result = run_backup(params, check_mode=check_mode, now=now)
    except PecError as exc:
        error = exc.msg
    status_path = params.get("status_path")
    if offhost_enabled and not check_mode:
        previous = read_status(status_path).get("offhost", {}) if status_path else {}
        target = result if result and result.get("verified") else None
        if target is None:
            pending = pending_offhost(
                params["dest_dir"], validate_label(params.get("label") or "manual"), previous.get("pushed_backup")
            )
            target = {"path": pending["path"]} if pending else None
        if target and previous.get("state") == "ok" and previous.get("pushed_backup") == target["path"]:
            offhost = {
                "state": "ok",
                "path": previous.get("path"),
                "sha256": previous.get("sha256"),
                "error": None,
                "destination": params.get("offhost_dest"),
                "changed": False,
                "source": target["path"],
            }
        elif target:
            offhost = push_offhost(target["path"], params)
            offhost["source"] = target["path"]
        if result is not None:
            result["offhost"] = offhost
    retention = None
    if result and result.get("verified") and not check_mode and (params.get("keep_daily") or params.get("keep_weekly")):
        retention = apply_retention(
            params["dest_dir"],
            result["label"],
            int(params.get("keep_daily") or 0),
            int(params.get("keep_weekly") or 0),
            int(params.get("keep_min") or 2),
        )
        result["retention"] = retention
    if status_path and not check_mode:
        write_status(status_path, attempt, result, error, offhost, offhost_enabled, params.get("offhost_dest"))
    return result, error


# ------------------------------------------------------------------------- the scheduled job entry point
def _log(message, priority="info"):
    sys.stderr.write(message + "\n")
    try:
        import syslog

        syslog.openlog("sesdf-esus-backup", 0, syslog.LOG_DAEMON)
        syslog.syslog(getattr(syslog, "LOG_" + priority.upper(), syslog.LOG_INFO), message)
    except Exception as exc:
        sys.stderr.write(f"(syslog unavailable: {exc})\n")


def cli_main(argv=None):
    """``sesdf-esus-backup [--config FILE] [--now ISO8601]``: the daily job on servers without Ansible."""
    import argparse

    parser = argparse.ArgumentParser(prog="sesdf-esus-backup", description="Verified backup of the PEC database")
    parser.add_argument("--config", default="/etc/sesdf-esus/backup.json")
    parser.add_argument("--now", help="pretend the current time is this ISO 8601 instant (tests, simulations)")
    args = parser.parse_args(argv)
    os.umask(0o077)
    try:
        with open(args.config, encoding="utf-8") as handle:
            params = json.load(handle)
    except (OSError, ValueError) as exc:
        _log(f"cannot read config {args.config}: {exc}; reinstall with the sesdf.esus.backup_schedule role", "err")
        return 2
    now = parse_iso(args.now) if args.now else None
    _log(f"backup of the PEC database into {params.get('dest_dir')} started")
    result, error = backup_run(params, now=now)
    if error:
        _log(f"BACKUP FAILED: {error}", "err")
    else:
        _log(
            f"backup ok: {result['path']} ({result['size_bytes']} bytes, sha256 {result['sha256']}, "
            f"verified {result['verify_level']}, {result['duration_s']}s)"
        )
        for path in (result.get("retention") or {}).get("removed", []):
            _log(f"retention removed {path}")
    off = (result or {}).get("offhost")
    if off:
        if off["state"] == "ok":
            _log(f"off-host copy ok: {off['path']}")
        else:
            _log(f"OFF-HOST COPY {off['state'].upper()}: {off.get('error')}", "warning")
    return 1 if error else (3 if off and off["state"] == "failed" else 0)
