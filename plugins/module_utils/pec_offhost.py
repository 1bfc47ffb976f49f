# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Off-host copies of the backups: staging (optionally age-encrypted), push to a mounted share or over
rsync/SSH through the destinations of ``_transfer``, and the retry of a copy still pending.
"""

from __future__ import annotations

import os
import subprocess

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write, sha256_file, unlink_quiet
from ansible_collections.sesdf.esus.plugins.module_utils._transfer import (
    MISSING,
    NOT_MOUNTED,
    PathDestination,
    RsyncDestination,
    run_command,
    sidecar_text,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_archive import (
    OFFHOST_NAMES,
    SHA_SUFFIX,
    TMP_PREFIX,
    find_tool,
    list_backups,
    read_sha_sidecar,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

STAGE_DIR = ".offhost"


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
        unlink_quiet(tmp)
        raise PecError(
            f"age could not encrypt the off-host copy: {proc.stderr.decode(errors='replace').strip()}; "
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
