# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Off-host copies of the backups: staging (optionally age-encrypted), push to a mounted share or over
rsync/SSH through the destinations of ``_transfer``, and the retry of a copy still pending; or (methods
``borg_mount``/``borg_ssh``) every verified local backup the deduplicating repository of ``_borg`` lacks.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

from ansible_collections.sesdf.esus.plugins.module_utils import _paths, collection_state
from ansible_collections.sesdf.esus.plugins.module_utils._borg import (
    DEFAULT_CHUNKER,
    DEFAULT_COMPRESSION,
    NO_REPOSITORY,
    BorgError,
    BorgRepo,
    BorgRunner,
    comment_text,
)
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import (
    atomic_write,
    read_json,
    sha256_file,
    unlink_quiet,
    write_json,
)
from ansible_collections.sesdf.esus.plugins.module_utils._runner import Runner
from ansible_collections.sesdf.esus.plugins.module_utils._transfer import (
    MISSING,
    NOT_MOUNTED,
    PathDestination,
    RsyncDestination,
    run_command,
    sidecar_text,
    under_mount,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_archive import (
    ARCHIVE_SUFFIX,
    MANIFEST_SUFFIX,
    OFFHOST_NAMES,
    SHA_SUFFIX,
    TMP_PREFIX,
    find_tool,
    list_backups,
    read_sha_sidecar,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

STAGE_DIR = ".offhost"
COMMENT_HASH_HEX = 32  # 128 bits of each table's sha256 in the borg comment (the manifest keeps all 64 hex digits)
COMMENT_MAX = 120 * 1024


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
        proc = Runner().run([age, "-r", recipient], stdin=src, stdout=out, text=False, timeout=None)
        out.flush()
        os.fsync(out.fileno())
    if proc.rc != 0:
        unlink_quiet(tmp)
        said = proc.stderr.decode(errors="replace").strip() if proc.rc is not None else proc.why()
        raise PecError(
            f"age could not encrypt the off-host copy: {said}; "
            "check backup_offhost_encrypt_recipient (an age public key, age1...)"
        )
    os.chmod(tmp, 0o600)
    digest = sha256_file(tmp)
    atomic_write(staged + SHA_SUFFIX, sidecar_text(digest, os.path.basename(staged)))
    os.replace(tmp, staged)
    return staged, digest


def push_mount(src, digest, dest_dir, require_mount=True):
    """Copy to a mounted share: resumable (``.tmp-<name>`` partial), checked against ``digest`` before the rename.

    Partials of other backups left there by a killed copy (stale for ``_transfer.STALE_AFTER_S``) are removed
    before and after the copy (RV ``removed_temporaries``); nothing but this collection's temporaries is touched.
    """
    dest = PathDestination(
        dest_dir,
        require_mount=require_mount,
        mount_below=True,
        partial=TMP_PREFIX + "{name}",
        resume=True,
        ours=OFFHOST_NAMES,
    )
    problem = dest.problem()
    if problem == MISSING:
        raise PecError(
            f"off-host destination {dest_dir} is not available (not a directory); "
            "mount the share; the copy will be retried on the next run"
        )
    if problem == NOT_MOUNTED:
        raise PecError(
            f"off-host destination {dest_dir} is not a mounted share (nothing is mounted there); "
            "mount the share; the copy will be retried on the next run"
        )
    name = os.path.basename(src)
    final = os.path.join(dest_dir, name)
    if dest.remote_sha256(name) == digest:
        removed = dest.clean_stale()
        return {
            "path": final,
            "sha256": digest,
            "changed": bool(removed),
            "resumed_from": None,
            "removed_temporaries": removed,
        }
    offset = dest.put(src, name, expected_sha256=digest, what=f"off-host copy at {dest_dir}")
    return {
        "path": final,
        "sha256": digest,
        "changed": True,
        "resumed_from": offset or None,
        "removed_temporaries": dest.removed_stale,
    }


def push_rsync(src, digest, target, ssh_options=None, rsync_path=None, timeout=3600, runner=run_command):
    """rsync over SSH (``user@host:/dir``), resumable (--partial-dir), checksum checked on arrival over SSH."""
    dest = RsyncDestination.from_target(
        target,
        port=None,
        timeout=timeout,
        strict_host_key_checking=None,
        ssh_options=ssh_options,
        connect_timeout=15,
        rsync=find_tool("rsync", rsync_path),
        rsync_args=("-t", "--partial-dir=.rsync-partial", "--chmod=F600"),
        put_timeout=timeout,
        runner=runner,
    )
    name = os.path.basename(src)
    dest.put(src, name, expected_sha256=digest, what=f"off-host copy to {target}")
    return {"path": f"{dest.target}:{dest.remote(name)}", "sha256": digest, "changed": True, "resumed_from": None}


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
            unlink_quiet(src + suffix)
    return {
        "state": "ok",
        "path": pushed["path"],
        "sha256": digest,
        "error": None,
        "destination": dest,
        "resumed_from": pushed.get("resumed_from"),
        "changed": pushed.get("changed", True),
        "removed_temporaries": pushed.get("removed_temporaries", []),
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


# ------------------------------------------------------------------------- the borg repository (borg_mount, borg_ssh)
BORG_METHODS = ("borg_mount", "borg_ssh")
DEFAULT_BORG_STATE = _paths.STATE_DIR + "/borg-repo.json"
DEFAULT_BORG_BASE = _paths.BORG_BASE_DIR
DEFAULT_PASSPHRASE_FILE = _paths.CONFIG_DIR + "/borg.passphrase"
DEFAULT_BORG_ESCROW = _paths.CONFIG_DIR + "/borg-escrow.json"
ESCROW_SOURCES = ("inventory", "vault_export")
ESCROW_REFUSED = (
    "a chave e a senha do repositório de cópias (borg) desta UBS não estão sob custódia do NTINF: sem elas a cópia "
    "externa fica ilegível no dia em que o servidor se perder; nada foi criado no destino. Para corrigir: defina "
    "backup_schedule_borg_export_dir (a exportação para o cofre, no computador de controle) ou informe a senha em "
    "backup_schedule_borg_passphrase (inventário ou credencial do AWX) e rode o backup_schedule de novo. / "
    "The borg repository's key and passphrase of this UBS are not escrowed: without them the off-host copy is "
    "unreadable the day the server is lost; nothing was created at the destination. To fix: set "
    "backup_schedule_borg_export_dir (the vault export on the control node) or give the passphrase in "
    "backup_schedule_borg_passphrase (inventory or AWX credential), then run backup_schedule again."
)
_TS_RE = re.compile(r"(\d{8}T\d{6}Z)$")


def borg_prefix(params):
    """Archive names of this UBS: ``esus-<CNES>-<label>-<UTC>``; the CNES makes another UBS's archives visible."""
    cnes = str(params.get("cnes") or "").strip()
    if not re.fullmatch(r"\d{7}", cnes):
        raise PecError(f"the borg off-host copy needs this UBS's CNES (7 digits), got {cnes!r}: set sesdf_esus_cnes")
    return f"esus-{cnes}-"


def borg_archive_name(prefix, local_path):
    """``esus_diario_20260101T023000Z.pgdump.zst`` -> ``<prefix>diario-20260101T023000Z``."""
    stem = os.path.basename(local_path)[: -len(ARCHIVE_SUFFIX)]
    _db, _sep, rest = stem.partition("_")
    label, _sep, stamp = rest.rpartition("_")
    return f"{prefix}{label}-{stamp}"


def archive_stamp(name):
    match = _TS_RE.search(name)
    return match.group(1) if match else ""


def borg_repo(params, runner=None):
    method = params.get("offhost_method")
    location = params.get("offhost_dest") or ""
    if method == "borg_ssh" and not location.startswith("ssh://"):
        raise PecError(f"borg_ssh needs backup_schedule_offhost_dest as ssh://user@host[:port]/path, not {location!r}")
    if method == "borg_mount" and not location.startswith("/"):
        raise PecError(f"borg_mount needs backup_schedule_offhost_dest as an absolute path, not {location!r}")
    return BorgRepo(
        location,
        params.get("borg_passphrase_file") or DEFAULT_PASSPHRASE_FILE,
        params.get("borg_base_dir") or DEFAULT_BORG_BASE,
        ssh_key=params.get("borg_ssh_key"),
        known_hosts=params.get("borg_known_hosts"),
        borg=params.get("borg_path") or "borg",
        chunker=params.get("borg_chunker_params") or DEFAULT_CHUNKER,
        compression=params.get("borg_compression") or DEFAULT_COMPRESSION,
        timeout=int(params.get("borg_timeout") or 6 * 3600),
        runner=runner or BorgRunner(pdeathsig=True),
    )


def escrow_status(params, passphrase_file):
    """What the backup_schedule role recorded about the escrow of ``passphrase_file`` (the repository's passphrase;
    the repokey lives in the repository and opens with it): {escrowed, sources, key_in_vault_export[, error]}.

    Escrowed only when the record names this passphrase file and a source the role saw succeed: ``inventory`` (the
    passphrase came from the inventory or AWX) or ``vault_export`` (passphrase and key written to IT's vault on the
    control node). Never raises: an unreadable record is not an escrow."""
    path = params.get("borg_escrow_path") or DEFAULT_BORG_ESCROW
    out = {"escrowed": False, "sources": [], "key_in_vault_export": False}
    try:
        record = read_json(path, "borg escrow record", missing=None)
    except PecError as exc:
        out["error"] = exc.msg
        return out
    if not isinstance(record, dict):
        out["error"] = f"no escrow record at {path}"
        return out
    sources = [s for s in record.get("sources") or [] if s in ESCROW_SOURCES]
    if record.get("passphrase_file") != passphrase_file:
        out["error"] = f"the escrow record {path} is for {record.get('passphrase_file')!r}, not {passphrase_file}"
        return out
    out.update(escrowed=bool(sources), sources=sources, key_in_vault_export=record.get("key_in_vault_export") is True)
    return out


def open_repository(repo, params, prefix):
    """The repository, made on first use, refused when it is not this UBS's. Returns its id."""
    if params.get("offhost_method") == "borg_mount" and params.get("offhost_require_mount", True):
        if not under_mount(os.path.dirname(repo.location.rstrip("/"))):
            raise PecError(
                f"off-host destination {repo.location} is not on a mounted share (nothing is mounted there); "
                "mount the share; the missing days are sent on the next run; the local backups are untouched"
            )
    state_path = params.get("borg_state_path") or DEFAULT_BORG_STATE
    os.makedirs(os.path.dirname(state_path), mode=0o755, exist_ok=True)
    state = read_json(state_path, "borg repository state", missing={}) or {}
    if not os.path.isfile(repo.passphrase_file):
        raise PecError(
            f"the repository passphrase file {repo.passphrase_file} is missing; run the backup_schedule role "
            "(it restores backup_schedule_borg_passphrase from IT's vault or makes a new one for a new repository)"
        )
    try:
        info = repo.info()
    except BorgError as exc:
        if exc.kind != NO_REPOSITORY:
            raise
        if state.get("repository_id"):
            raise PecError(
                f"the repository this UBS made (id {state['repository_id']}) is no longer at {repo.location}: "
                "it was removed or the destination points elsewhere; point backup_schedule_offhost_dest to it, or "
                f"remove {state_path} to start a new repository; the local backups are untouched"
            ) from exc
        if not escrow_status(params, repo.passphrase_file)["escrowed"]:
            raise PecError(ESCROW_REFUSED) from exc
        repo.init()
        info = repo.info()
        key_file = params.get("borg_key_export") or os.path.join(os.path.dirname(repo.passphrase_file), "borg.key")
        repo.export_key(key_file)
        os.chmod(key_file, 0o600)
        state = {"repository_id": info["id"], "location": repo.location, "prefix": prefix}
        write_json(state_path, state, mode=0o600)
    if state.get("repository_id") and state["repository_id"] != info["id"]:
        raise PecError(
            f"the repository at {repo.location} (id {info['id']}) is not the one this UBS made "
            f"(id {state['repository_id']}): it was made by another UBS or recreated; nothing was sent; point "
            f"backup_schedule_offhost_dest to this UBS's repository or remove {state_path} to adopt it"
        )
    foreign = sorted({a["name"] for a in repo.archives() if not a["name"].startswith(prefix)})
    if foreign:
        raise PecError(
            f"the repository at {repo.location} holds archives of another UBS ({', '.join(foreign[:3])}); this UBS "
            f"writes only {prefix}*; nothing was sent; give each UBS its own repository"
        )
    if not state.get("repository_id"):
        write_json(state_path, {"repository_id": info["id"], "location": repo.location, "prefix": prefix}, mode=0o600)
    return info["id"]


def borg_comment(backup):
    """What the restore drill compares with: the local archive's manifest (row counts when it recorded them, the
    ordered-row hashes, cut to COMMENT_HASH_HEX hex digits: a borg comment is one argument of borg create, at most
    128 KiB; dropped, with ``row_hashes_omitted``, when they would still not fit)."""
    try:
        manifest = read_json(backup["path"] + MANIFEST_SUFFIX, "backup manifest", missing={}) or {}
    except PecError:
        manifest = {}
    comment = {
        "file": os.path.basename(backup["path"]),
        "sha256": manifest.get("sha256") or backup.get("sha256"),
        "created_at": manifest.get("created_at"),
        "row_counts": manifest.get("row_counts"),
        "changed_during_dump": manifest.get("changed_during_dump") or [],
        "pec_version": manifest.get("pec_version"),
        "db_timezone": manifest.get("db_timezone"),
    }
    hashes = manifest.get("row_hashes")
    if hashes is not None:
        comment["row_hashes"] = {table: digest[:COMMENT_HASH_HEX] for table, digest in hashes.items()}
        comment["row_hash_encoding"] = manifest.get("row_hash_encoding")
        if len(comment_text(comment)) > COMMENT_MAX:
            del comment["row_hashes"]
            comment["row_hashes_omitted"] = f"{len(hashes)} tables: too many for a borg archive comment"
    return comment


def pending_for_borg(local, names):
    """Local verified backups (oldest first) the repository lacks and that are newer than its newest archive:
    the days missed while the destination was down; what retention pruned there is never sent again."""
    newest = max((archive_stamp(n) for n in names), default="")
    return [b for b in local if b["name"] not in names and archive_stamp(b["name"]) > newest]


def send_one(repo, zstd, backup, params):
    """One verified local backup into the repository: the decompressed dump as STDIN_NAME and, when the daily job
    wrote its state copy (collection_state), the ``sesdf-esus-estado/`` tree in the same archive."""
    comment = borg_comment(backup)
    state = collection_state.state_name(backup["path"])
    if not os.path.exists(state):
        return repo.create_from(
            [zstd, "-dc", "-q", backup["path"]],
            backup["name"],
            backup["created_at"].strftime("%Y-%m-%dT%H:%M:%S"),
            comment,
        )
    work = tempfile.mkdtemp(prefix=".sesdf-esus-estado-", dir=params["dest_dir"])
    try:
        try:
            tree = collection_state.extract_file(state, zstd, work)
            manifest, _backup_manifest = collection_state.read_tree(tree)
        except PecError as exc:
            # the day's dump matters more than its state: it goes without it, and the archive says why
            comment["state_error"] = exc.msg
            return repo.create_from(
                [zstd, "-dc", "-q", backup["path"]],
                backup["name"],
                backup["created_at"].strftime("%Y-%m-%dT%H:%M:%S"),
                comment,
            )
        comment["state"] = {"tree": collection_state.TREE, "files": len(manifest.get("files") or [])}
        return repo.create_from(
            [zstd, "-dc", "-q", backup["path"]],
            backup["name"],
            backup["created_at"].strftime("%Y-%m-%dT%H:%M:%S"),
            comment,
            paths=[collection_state.TREE],
            cwd=work,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def push_borg(params, last_archive=None, runner=None, clock=time.monotonic):
    """Send every pending verified backup into the repository, oldest first (``last_archive``: the newest a previous
    run sent, for the count of pending days while the repository cannot be reached). Returns the ``offhost`` part:
    {state ok|failing|stale, method, repository, pending_days, error, sent[], bytes_sent, last_archive, escrow}.
    A repository is made only when its passphrase is escrowed (``escrow_status``); otherwise ESCROW_REFUSED."""
    out = {
        "state": "failing",
        "method": params.get("offhost_method"),
        "repository": params.get("offhost_dest"),
        "pending_days": None,
        "error": None,
        "sent": [],
        "bytes_sent": 0,
    }
    local = []
    try:
        prefix = borg_prefix(params)
        label = params.get("label") or "manual"
        local = [b for b in reversed(list_backups(params["dest_dir"], label=label)) if b["verified"]]
        for backup in local:
            backup["name"] = borg_archive_name(prefix, backup["path"])
        # until the repository answers: the days newer than the last archive a run sent
        out["pending_days"] = len(pending_for_borg(local, {last_archive} if last_archive else set()))
        repo = borg_repo(params, runner)
        out["escrow"] = escrow_status(params, repo.passphrase_file)
        open_repository(repo, params, prefix)
        names = {a["name"] for a in repo.archives(prefix)}
        pending = pending_for_borg(local, names)
        out["pending_days"] = len(pending)
        window = float(params.get("borg_send_window_s") or 0)
        started = clock()
        zstd = find_tool("zstd", params.get("zstd_path"))
        for backup in pending:
            if window and clock() - started > window:
                out["state"] = "stale"
                out["error"] = (
                    f"the send window ({int(window)} s) ended with {out['pending_days']} day(s) still to send; "
                    "they are sent on the next runs"
                )
                return out
            stats = send_one(repo, zstd, backup, params)
            out["sent"].append(backup["name"])
            out["bytes_sent"] += int(stats.get("deduplicated_size") or 0)
            out["pending_days"] -= 1
            out["last_archive"] = backup["name"]
            out["last_source"] = backup["path"]
    except PecError as exc:
        out["error"] = exc.msg
        return out
    out["state"] = "ok"
    if not local:
        out["state"] = "stale"
        out["error"] = "no verified local backup to send"
    return out
