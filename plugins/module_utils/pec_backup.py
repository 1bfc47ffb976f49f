# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verified backups of the PEC database: one run is plan, dump, verify, publish, then off-host copy,
retention and the status fact file.

ONE implementation, used by the pec_backup module and, copied verbatim by the backup_schedule role, by the
scheduled job on servers without Ansible (see ``cli_main``). Standard library only (plus the sibling
module_utils). The archive is written to a hidden temporary name in the destination directory and published
by rename only after pg_dump and zstd exited 0, the archive was fsynced, a verification pass read it whole
(see pec_archive) and its ``.sha256`` and ``.manifest.json`` were written beside it.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import glob
import os
import shutil
import tempfile
import time
import typing

from ansible_collections.sesdf.esus.plugins.module_utils import _paths, collection_state
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import (
    atomic_write,
    fsync_dir,
    unlink_quiet,
    write_json,
)
from ansible_collections.sesdf.esus.plugins.module_utils._job import (
    EXIT_ATTENTION,
    EXIT_FAILED,
    EXIT_OK,
    JobConfig,
    job_main,
)
from ansible_collections.sesdf.esus.plugins.module_utils._runner import DEVNULL, PIPE
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_iso, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils._transfer import sidecar_text
from ansible_collections.sesdf.esus.plugins.module_utils.pec_archive import (
    MANIFEST_SUFFIX,
    PIPELINE,
    SHA_SUFFIX,
    TMP_PREFIX,
    archive_name,
    disk_full,
    find_tool,
    list_backups,
    read_sha_sidecar,
    tail_file,
    validate_label,
    verify_archive,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_backup_status import read_status, write_status
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import (
    PgClient,
    classify_error,
    database_size,
    database_version,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_drill import NEVER, due, repo_check, restore_drill
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall
from ansible_collections.sesdf.esus.plugins.module_utils.pec_offhost import (
    BORG_METHODS,
    borg_prefix,
    borg_repo,
    pending_offhost,
    push_borg,
    push_offhost,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_restore import restore_test, row_counts
from ansible_collections.sesdf.esus.plugins.module_utils.pec_retention import apply_retention

LOCK_NAME = ".sesdf-esus-backup.lock"


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
    """Remove temporaries left by a killed run (``.tmp-*`` dumps, ``.<name>.*.tmp`` of _fsutil.atomic_write).

    Call only while holding DestLock."""
    removed = []
    for path in glob.glob(os.path.join(directory, TMP_PREFIX + "*")) + glob.glob(os.path.join(directory, ".*.tmp")):
        if os.path.isfile(path):
            unlink_quiet(path)
            removed.append(path)
    return removed


def ensure_dest_dir(directory, create=True):
    if not os.path.isdir(directory):
        if not create:
            raise PecError(f"backup directory {directory} does not exist")
        os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)


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
            dump = PIPELINE.spawn(
                [pg_dump, "-Fc", "-Z0", *plan["extra_args"], *client.conn_args()],
                stdout=PIPE,
                stderr=derr,
                env=client.env(),
            )
            try:
                comp = PIPELINE.spawn(
                    [plan["zstd"], f"-{plan['level']}", f"-T{plan['threads']}", "-q", "-f", "-o", tmp_path],
                    stdin=dump.stdout,
                    stdout=DEVNULL,
                    stderr=zerr,
                )
            except BaseException:
                dump.stdout.close()
                PIPELINE.stop(dump)
                raise
            dump.stdout.close()
            comp_rc = comp.wait()
            if comp_rc != 0 and dump.poll() is None:
                dump.kill()
            dump_rc = dump.wait()
        derr_text, zerr_text = tail_file(derr_path), tail_file(zerr_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if dump_rc == 0 and comp_rc == 0:
        return
    if disk_full(derr_text, zerr_text):
        raise PecError(
            f"the backup directory {plan['dest_dir']} is full (no space left on device) while writing the dump; "
            "free space there or choose another backup_dest_dir; nothing was published and older backups are intact"
        )
    if dump_rc != 0:
        raise PecError(f"pg_dump failed: {classify_error(derr_text, client.conn)}; nothing was published")
    raise PecError(
        f"zstd failed while compressing the dump ({zerr_text or 'rc=' + str(comp_rc)}); nothing was published"
    )


def _new_result(plan, started_at):
    """The result of a run before anything is done (see the pec_backup module's RETURN)."""
    conn = plan["conn"]
    final = os.path.join(plan["dest_dir"], plan["name"])
    return {
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


def reuse_recent(plan, result, started_at, reuse_minutes):
    """Stage "plan": a verified backup of the same label newer than reuse_minutes that still verifies, or False."""
    dest = plan["dest_dir"]
    if reuse_minutes <= 0 or not os.path.isdir(dest):
        return False
    for entry in list_backups(dest, label=plan["label"]):
        age = (started_at - entry["created_at"]).total_seconds() / 60
        if entry["verified"] and 0 <= age <= reuse_minutes:
            check = verify_archive(
                entry["path"],
                os.path.join(plan["bin_dir"], "pg_restore"),
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
                return True
    return False


def describe_check_mode(plan, result):
    """What a run would do, from the database size (check mode)."""
    with PgClient(plan["bin_dir"], plan["conn"], timeout=30) as client:
        size = database_size(client)
    result["changed"] = True
    result["would"] = (
        f"dump {plan['conn']['name']} ({int(size)} bytes in the database) to {result['path']} with pg_dump -Fc -Z0 "
        f"| zstd, checksum it, verify ({plan['verify_level']}) and publish it"
    )
    return result


def verify_new(client, plan, tmp, counts_before):
    """Stage "verify": full read with the ordered-row hashes (and, with verify_level restore, a restore test) of the
    unpublished archive."""
    check = verify_archive(tmp, client.tool("pg_restore"), plan["zstd"], env=client.env(), row_hashes=True)
    if not check["ok"]:
        raise PecError(
            f"the new backup failed verification ({'; '.join(check['problems'])}); "
            "nothing was published; check the disk and run again",
            verification=check,
        )
    if plan["verify_level"] == "restore":
        counts_after = row_counts(client)
        test = restore_test(client, tmp, "zstd", plan["zstd"], counts_before, counts_after, plan["maintenance_db"])
        check["restore"] = test
        if not test["ok"]:
            raise PecError(
                f"restore test of the new backup failed: row counts differ {test['mismatches']}; nothing was published"
            )
    return check


MODS_SQL = (
    "SELECT schemaname || '.' || relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_all_tables "
    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg_toast%'"
)


def modifications(client):
    """Rows inserted, updated or deleted per table since the statistics began (no lock: never waits on the PEC)."""
    return {name: int(mods) for name, mods in client.query(MODS_SQL, record=False)}


def record_row_counts(result, mods_before, counts_after, mods_after):
    """Per-table row counts of the dump for its manifest (what a later restore drill compares with): counted after
    the dump, for the tables nothing modified between before and after it; the others are listed in
    ``changed_during_dump``."""
    stable = {t for t in counts_after if t in mods_before and mods_before[t] == mods_after.get(t)}
    result["row_counts"] = {t: c for t, c in counts_after.items() if t in stable}
    result["changed_during_dump"] = sorted(set(counts_after) - stable)


def publish(plan, result, tmp, hashes=None):
    """Stage "publish": sidecar checksum, manifest, then the rename of the verified archive to its final name.

    ``hashes``: the verification's {"row_hashes", "row_hash_encoding"} (in the manifest, not in the result)."""
    final = result["path"]
    manifest = {
        "format": "sesdf.esus/pgdump-custom-zstd/1",
        "file": plan["name"],
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
        "tools": {"pg_bin_dir": plan["bin_dir"], "zstd": plan["zstd"], "compress_level": plan["level"]},
        # what pec_info's re-check compares without reading the archive (the rename keeps the mtime)
        "mtime_ns": os.stat(tmp).st_mtime_ns,
    }
    for key in ("pec_version", "db_timezone"):
        if result.get(key):
            manifest[key] = result[key]
    if "row_counts" in result:
        manifest["row_counts"] = result["row_counts"]
        manifest["changed_during_dump"] = result["changed_during_dump"]
    manifest.update(hashes or {})
    atomic_write(final + SHA_SUFFIX, sidecar_text(result["sha256"], plan["name"]))
    write_json(final + MANIFEST_SUFFIX, manifest)
    os.replace(tmp, final)
    fsync_dir(plan["dest_dir"])


def _full_disk(exc):
    """True for an OSError (or a PecError caused by one) of a full file system."""
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    return isinstance(cause, OSError) and cause.errno == errno.ENOSPC


def dump_verify_publish(params, plan, result, t0):
    """Stages "dump", "verify" and "publish", under the directory lock; nothing is published unless all pass."""
    dest = plan["dest_dir"]
    final = result["path"]
    ensure_dest_dir(dest)
    with DestLock(dest):
        result["removed_temporaries"] = clean_stale_temporaries(dest)
        tmp = os.path.join(dest, f"{TMP_PREFIX}{plan['name']}.{os.getpid()}")
        try:
            with PgClient(plan["bin_dir"], plan["conn"], timeout=int(params.get("db_timeout") or 600)) as client:
                client.scalar("SELECT 1")  # clear message for a stopped database or wrong password
                result["pec_version"] = pec_version(client)
                result["db_timezone"] = client.scalar("SHOW TimeZone")
                counts_before = row_counts(client) if plan["verify_level"] == "restore" else None
                mods_before = modifications(client) if params.get("manifest_row_counts") else None
                _dump_to(client, tmp, plan)
                if mods_before is not None:
                    record_row_counts(result, mods_before, row_counts(client), modifications(client))
                os.chmod(tmp, 0o600)
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
                check = verify_new(client, plan, tmp, counts_before)
                hashes = {key: check.pop(key) for key in ("row_hashes", "row_hash_encoding")}
                check["row_hashes_tables"] = len(hashes["row_hashes"])
                result["verification"] = check
            check["path"] = final
            result["sha256"] = check["sha256"]
            result["size_bytes"] = check["size_bytes"]
            result["verified"] = True
            result["duration_s"] = round(time.monotonic() - t0, 3)
            publish(plan, result, tmp, hashes)
        except (OSError, PecError) as exc:
            _discard(tmp, final)
            if isinstance(exc, PecError) and not _full_disk(exc):
                raise
            if _full_disk(exc):
                raise PecError(
                    f"the backup directory {dest} is full (no space left on device); free space there or choose "
                    "another backup_dest_dir; nothing was published and older backups are intact"
                ) from exc
            raise PecError(f"backup to {dest} failed: {exc}; nothing was published") from exc
        except BaseException:
            _discard(tmp, final)
            raise
        if params.get("state_copy"):
            result["state_copy"] = state_copy_stage(params, plan, result)
    result["changed"] = True
    return result


def pec_version(client):
    """The PEC version the database records (what a rebuild installs before restoring it), or None."""
    try:
        return database_version(client)
    except PecError:
        return None


def state_copy_stage(params, plan, result):
    """Stage "state copy" (the daily job): the collection's state beside the new archive (collection_state), for
    the off-host copy and a rebuild. Never fails the backup: {path, files, bytes, sha256} or {error}."""
    try:
        return collection_state.snapshot(result["path"], params, plan["zstd"], cnes=params.get("cnes"))
    except PecError as exc:
        return {"error": exc.msg}


def _discard(tmp, final):
    unlink_quiet(tmp)
    if not os.path.exists(final):
        unlink_quiet(final + SHA_SUFFIX)
        unlink_quiet(final + MANIFEST_SUFFIX)


def run_backup(params, check_mode=False, now=None):
    """Make one verified backup: plan, then dump, verify and publish. Returns the result dict."""
    plan = plan_backup(params)
    started_at = now or utcnow()
    t0 = time.monotonic()
    plan["bin_dir"] = plan["install"].pg_bin_dir()
    plan["conn"] = plan["install"].connection()
    plan["name"] = archive_name(plan["conn"]["name"], plan["label"], started_at)
    result = _new_result(plan, started_at)
    if reuse_recent(plan, result, started_at, int(params.get("reuse_within_minutes") or 0)):
        result["duration_s"] = round(time.monotonic() - t0, 3)
        return result
    if check_mode:
        return describe_check_mode(plan, result)
    return dump_verify_publish(params, plan, result, t0)


def offhost_enabled(params):
    return bool(params.get("offhost_enabled")) and params.get("offhost_method") in (
        "mount",
        "rsync",
        "controller",
        *BORG_METHODS,
    )


def offhost_stage(params, result):
    """Stage "off-host": push this run's backup, or retry the newest verified one still pending. None: nothing."""
    status_path = params.get("status_path")
    previous = read_status(status_path).get("offhost", {}) if status_path else {}
    if params.get("offhost_method") in BORG_METHODS:
        return push_borg(params, previous.get("last_archive"))
    target = result if result and result.get("verified") else None
    if target is None:
        pending = pending_offhost(
            params["dest_dir"], validate_label(params.get("label") or "manual"), previous.get("pushed_backup")
        )
        target = {"path": pending["path"]} if pending else None
    if not target:
        return None
    if previous.get("state") == "ok" and previous.get("pushed_backup") == target["path"]:
        return {
            "state": "ok",
            "path": previous.get("path"),
            "sha256": previous.get("sha256"),
            "error": None,
            "destination": params.get("offhost_dest"),
            "changed": False,
            "source": target["path"],
        }
    offhost = push_offhost(target["path"], params)
    offhost["source"] = target["path"]
    return push_state_copy(target["path"], params, offhost)


def push_state_copy(archive, params, offhost):
    """mount/rsync: the state copy of ``archive`` (collection_state) beside the dump at the destination, encrypted
    like it; the copy counts as ``ok`` only when both arrived (a rebuild needs both)."""
    state = collection_state.state_name(archive)
    if offhost["state"] != "ok" or params.get("offhost_method") not in ("mount", "rsync") or not os.path.exists(state):
        return offhost
    pushed = push_offhost(state, params)
    offhost["state_copy"] = {k: pushed.get(k) for k in ("state", "path", "sha256", "error")}
    if pushed["state"] != "ok":
        offhost.update(state="failed", error=f"the dump arrived but its state copy did not: {pushed['error']}")
    return offhost


def retention_stage(params, result):
    """Stage "retention": after a verified backup, delete what the daily/weekly policy no longer keeps."""
    return apply_retention(
        params["dest_dir"],
        result["label"],
        int(params.get("keep_daily") or 0),
        int(params.get("keep_weekly") or 0),
        int(params.get("keep_min") or 2),
    )


def backup_run(params, check_mode=False, now=None):
    """Backup + off-host push (with retry of a pending one) + retention + status. Returns (result, error)."""
    attempt = now or utcnow()
    result, error, offhost = None, None, None
    enabled = offhost_enabled(params)
    try:
        result = run_backup(params, check_mode=check_mode, now=now)
    except PecError as exc:
        error = exc.msg
    if enabled and not check_mode:
        offhost = offhost_stage(params, result)
        if result is not None:
            result["offhost"] = offhost
    if result and result.get("verified") and not check_mode and (params.get("keep_daily") or params.get("keep_weekly")):
        result["retention"] = retention_stage(params, result)
        if params.get("state_copy"):
            result["retention"]["removed"] += collection_state.remove_orphans(params["dest_dir"])
    status_path = params.get("status_path")
    duties = {}
    if enabled and not check_mode and params.get("offhost_method") in BORG_METHODS:
        duties = repository_duties(params, attempt, read_status(status_path) if status_path else {}, offhost)
        if result is not None:
            result.update(duties)
    if status_path and not check_mode:
        write_status(status_path, attempt, result, error, offhost, enabled, params.get("offhost_dest"), duties)
    return result, error


def repository_duties(params, now, previous, offhost):
    """The weekly ``borg check`` and restore drill when due (and the repository was reached this run); the parts
    of the status not due are kept as they were ({"result": "never"} before the first)."""
    duties = {
        "repo_check": previous.get("repo_check") or dict(NEVER),
        "restore_drill": previous.get("restore_drill") or dict(NEVER),
    }
    if not offhost or offhost["state"] == "failing":
        return duties
    repo = borg_repo(params)
    if params.get("borg_prune") and offhost["state"] == "ok":
        # borg_mount only: over SSH the repository is append-only and pruned on the backup host
        try:
            duties["repo_prune"] = {
                "pruned": repo.prune(
                    borg_prefix(params),
                    params.get("borg_keep_daily", 7),
                    params.get("borg_keep_weekly", 4),
                    params.get("borg_keep_monthly", 12),
                ),
                "at": iso(now),
                "error": None,
            }
        except PecError as exc:
            duties["repo_prune"] = {"pruned": [], "at": iso(now), "error": exc.msg}
    if due(duties["repo_check"], "checked_at", params.get("borg_check_every_days", 7), now):
        try:
            duties["repo_check"] = repo_check(repo, params.get("borg_check_verify_data", True), now)
        except PecError as exc:
            duties["repo_check"] = dict(duties["repo_check"], last_attempt_error=exc.msg)
    hours = params.get("borg_drill_hours") or None
    if due(duties["restore_drill"], "finished_at", params.get("borg_drill_every_days", 7), now, hours):
        duties["restore_drill"] = restore_drill(repo, borg_prefix(params), params, now)
    return duties


# ------------------------------------------------------------------------- the scheduled job entry point
JOB_TAG = "sesdf-esus-backup"


@dataclasses.dataclass
class BackupJobConfig(JobConfig):
    """The daily backup job's configuration (written by sesdf.esus.backup_schedule; docs/jobs.md)."""

    dest_dir: str
    pec_root: str = "/opt/e-SUS"
    pec_config_path: str = "/etc/pec.config"
    pg_bin_dir: typing.Optional[str] = None
    app_service: str = "e-SUS-PEC.service"
    label: str = "diario"
    verify_level: str = "full_read"
    compress_level: int = 3
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_min: int = 2
    status_path: typing.Optional[str] = _paths.BACKUP_FACT
    cnes: str = ""
    manifest_row_counts: bool = True
    offhost_enabled: bool = False
    offhost_method: str = "mount"
    offhost_dest: str = ""
    offhost_encrypt_recipient: typing.Optional[str] = None
    offhost_require_mount: bool = True
    offhost_ssh_options: typing.List[str] = dataclasses.field(default_factory=list)
    borg_chunker_params: str = "buzhash,14,20,16,4095"
    borg_compression: str = "zstd,3"
    borg_passphrase_file: str = _paths.CONFIG_DIR + "/borg.passphrase"
    borg_key_export: str = _paths.CONFIG_DIR + "/borg.key"
    borg_state_path: str = _paths.STATE_DIR + "/borg-repo.json"
    borg_escrow_path: str = _paths.CONFIG_DIR + "/borg-escrow.json"
    borg_base_dir: str = _paths.STATE_DIR + "/borg"
    borg_ssh_key: str = "/root/.ssh/sesdf-esus-borg"
    borg_known_hosts: str = _paths.CONFIG_DIR + "/borg_known_hosts"
    borg_send_window_s: int = 0
    borg_check_every_days: int = 7
    borg_check_verify_data: bool = True
    borg_drill_every_days: int = 7
    borg_drill_hours: typing.Optional[typing.List[int]] = None
    borg_keep_daily: int = 7
    borg_keep_weekly: int = 4
    borg_keep_monthly: int = 12
    borg_prune: bool = False
    state_copy: bool = True
    state_dir: str = _paths.STATE_DIR
    config_dir: str = _paths.CONFIG_DIR
    facts_dir: str = _paths.FACTS_DIR
    state_exclude: typing.List[str] = dataclasses.field(default_factory=lambda: list(collection_state.STATE_EXCLUDE))


def _backup_arguments(parser):
    parser.add_argument("--now", help="pretend the current time is this ISO 8601 instant (tests, simulations)")


def _backup_job(config, args, log):
    params = config.as_dict()
    now = parse_iso(args.now) if args.now else None
    log(f"backup of the PEC database into {params.get('dest_dir')} started")
    result, error = backup_run(params, now=now)
    if error:
        log(f"BACKUP FAILED: {error}", "err")
    else:
        log(
            f"backup ok: {result['path']} ({result['size_bytes']} bytes, sha256 {result['sha256']}, "
            f"verified {result['verify_level']}, {result['duration_s']}s)"
        )
        for path in (result.get("retention") or {}).get("removed", []):
            log(f"retention removed {path}")
        copy = result.get("state_copy") or {}
        if copy.get("error"):
            log(f"STATE COPY FAILED: {copy['error']}; the backup is kept, a rebuild would miss the ledger", "warning")
        elif copy:
            log(f"state copy ok: {copy['path']} ({copy['files']} files)")
    off = (result or {}).get("offhost")
    if off:
        if off["state"] == "ok" and off.get("method") in BORG_METHODS:
            log(f"off-host repository ok: {off['repository']} sent {off['sent'] or 'nothing new'}")
        elif off["state"] == "ok":
            log(f"off-host copy ok: {off['path']}")
        else:
            log(f"OFF-HOST COPY {off['state'].upper()}: {off.get('error')}", "warning")
    if error:
        return EXIT_FAILED
    for part in ("repo_check", "restore_drill"):
        done = (result or {}).get(part) or {}
        if done.get("result") == "failed":
            log(f"{part.upper().replace('_', ' ')} FAILED: {done.get('error')}", "warning")
    copy_failed = bool(((result or {}).get("state_copy") or {}).get("error"))
    return EXIT_ATTENTION if copy_failed or (off and off["state"] in ("failed", "failing")) else EXIT_OK


def cli_main(argv=None):
    """``sesdf-esus-backup [--config FILE] [--now ISO8601]``: the daily job on servers without Ansible.

    Exit codes (module_utils/_job.py): 0 ok; 1 backup failed; 2 config unreadable or invalid; 3 backup ok but the
    off-host copy failed.
    """
    return job_main(
        JOB_TAG,
        "Verified backup of the PEC database",
        BackupJobConfig,
        _backup_job,
        argv,
        default_config=_paths.CONFIG_DIR + "/backup.json",
        role="backup_schedule",
        add_arguments=_backup_arguments,
    )
