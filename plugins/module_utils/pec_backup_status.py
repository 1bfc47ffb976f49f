# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup status fact file (``/etc/ansible/facts.d/sesdf_esus_backup.fact``): what the last run did.

Written by the backups (module and scheduled job), read by pec_info, the decommission check and monitoring.
What it claims is re-checked on every read by :func:`recheck_status` (pec_info): the archive it names must still
exist, have its manifest and the size recorded there (cheap, every read); its full sha256 is computed again on a
cadence (``full_every_hours``) or as soon as its size or mtime changed, the time of the last full check being
kept in a small cache file (``DEFAULT_CHECK_CACHE``) so multi-GB archives are not hashed on every run.
"""

from __future__ import annotations

import os

from ansible_collections.sesdf.esus.plugins.module_utils import _paths
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json, sha256_file, write_json
from ansible_collections.sesdf.esus.plugins.module_utils._job import write_status as write_job_status
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_iso, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_archive import MANIFEST_SUFFIX
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

DEFAULT_FACT = _paths.BACKUP_FACT
DEFAULT_CHECK_CACHE = _paths.BACKUP_CHECK_CACHE
DEFAULT_FULL_CHECK_HOURS = 24
CHECK_OK = "ok"
CHECK_MISMATCH = "mismatch"
CHECK_MISSING_MANIFEST = "missing_manifest"
CHECK_MISSING_ARCHIVE = "missing_archive"


def read_status(path, what="backup status"):
    """The status fact file (or another JSON object file of ours) as a dict; {} when absent or unreadable (a new
    one is then written)."""
    try:
        data = read_json(path, what, missing={})
    except PecError:
        return {}
    return data if isinstance(data, dict) else {}


def write_status(
    path, attempt_at, result=None, error=None, offhost=None, enabled_offhost=False, destination=None, extra=None
):
    """Update the status fact file (JSON) after a run; keeps the last success's details on failure. ``extra``:
    top-level parts replaced as a whole (``repo_check``, ``restore_drill``)."""
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
            verified_at=iso(attempt_at),
            verify_level=result["verify_level"],
        )
    else:
        status.update(last_result="failed", last_error=error)
        status.setdefault("last_success", None)
        status.setdefault("verified", False)
    off = dict(status.get("offhost") or {})
    if enabled_offhost and offhost is not None and offhost.get("method") in ("borg_mount", "borg_ssh"):
        status["offhost"] = repository_offhost(off, offhost, attempt_at)
        status.update(extra or {})
        write_job_status(path, status, mode=0o644, create_dir=True)
        return status
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
    status.update(extra or {})
    write_job_status(path, status, mode=0o644, create_dir=True)
    return status


def repository_offhost(previous, offhost, attempt_at):
    """The ``offhost`` part for a borg repository: {state ok|failing|stale, method, repository, last_success,
    pending_days, error, last_archive, sent, bytes_sent, escrow}; ``last_success``, ``last_archive`` and ``escrow``
    (pec_offhost.escrow_status: whether the repository's passphrase is escrowed) survive failures."""
    off = {
        "state": offhost["state"],
        "method": offhost["method"],
        "repository": offhost.get("repository") or "",
        "pending_days": offhost.get("pending_days"),
        "error": offhost.get("error"),
        "sent": offhost.get("sent") or [],
        "bytes_sent": offhost.get("bytes_sent") or 0,
        "last_success": previous.get("last_success") if previous.get("method") == offhost["method"] else None,
        "last_archive": offhost.get("last_archive") or previous.get("last_archive"),
        "escrow": offhost.get("escrow") or previous.get("escrow"),
    }
    if offhost["state"] == "ok":
        off["last_success"] = iso(attempt_at)
    return off


def status_age_hours(status, now=None):
    last = parse_iso((status or {}).get("last_success")) if isinstance(status, dict) else None
    if last is None:
        return None
    return round(((now or utcnow()) - last).total_seconds() / 3600, 2)


def _hours_since(when, now):
    return (now - when).total_seconds() / 3600


def _verdict(out, check, detail):
    out.update(verified=False, check=check, check_detail=detail)
    return out


def _write_cache(cache_path, entry):
    """Best effort: a cache that cannot be written only means the next read hashes again."""
    if not cache_path:
        return
    try:
        os.makedirs(os.path.dirname(cache_path), mode=0o755, exist_ok=True)
        write_json(cache_path, entry, mode=0o644)
    except (OSError, PecError):
        pass


def recheck_status(
    status, now=None, cache_path=DEFAULT_CHECK_CACHE, full_every_hours=DEFAULT_FULL_CHECK_HOURS, hasher=sha256_file
):
    """The status with what it claims checked again against the archive on disk (see the module docstring).

    Adds ``check`` (ok, mismatch, missing_manifest, missing_archive; None when no backup is claimed),
    ``check_detail``, ``checked_at`` (now), ``verified_at`` (last full sha256 check that passed) and
    ``full_check_at``; ``verified`` becomes false unless the check is ok.
    """
    now = now or utcnow()
    out = dict(status or {})
    out["checked_at"] = iso(now)
    path = out.get("path")
    if not path:
        out.update(verified=False, check=None, check_detail="no backup recorded")
        return out
    try:
        stat = os.stat(path)
    except OSError:
        return _verdict(out, CHECK_MISSING_ARCHIVE, f"the archive {path} the status names is gone")
    try:
        manifest = read_json(path + MANIFEST_SUFFIX, "backup manifest", missing=None)
    except PecError:
        manifest = None
    if not isinstance(manifest, dict) or not manifest.get("sha256"):
        return _verdict(
            out, CHECK_MISSING_MANIFEST, f"{path}{MANIFEST_SUFFIX} is missing or unreadable: the archive is unverified"
        )
    expected = manifest["sha256"]
    if out.get("sha256") and out["sha256"] != expected:
        return _verdict(out, CHECK_MISMATCH, f"the manifest of {path} records another sha256 than the status")
    if manifest.get("size_bytes") is not None and int(manifest["size_bytes"]) != stat.st_size:
        return _verdict(
            out, CHECK_MISMATCH, f"{path} has {stat.st_size} bytes, its manifest records {manifest['size_bytes']}"
        )
    signature = {"path": path, "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}
    cache = read_status(cache_path, "backup check cache")
    same = all(cache.get(k) == v for k, v in signature.items())
    last_full = parse_iso(cache.get("full_check_at")) if same else None
    last_ok = cache.get("ok") if same else None
    if last_full is None and manifest.get("mtime_ns") == stat.st_mtime_ns:
        last_full, last_ok = parse_iso(out.get("verified_at") or out.get("last_success")), True
    if last_full is None or _hours_since(last_full, now) >= full_every_hours:
        last_ok = hasher(path) == expected
        last_full = now
        _write_cache(cache_path, dict(signature, ok=last_ok, full_check_at=iso(now)))
        if last_ok:
            out["verified_at"] = iso(now)
    elif same and last_ok:
        out["verified_at"] = cache["full_check_at"]
    out["full_check_at"] = iso(last_full)
    if not last_ok:
        return _verdict(out, CHECK_MISMATCH, f"the sha256 of {path} is not the one its manifest records")
    out.update(verified=True, check=CHECK_OK, check_detail=None)
    return out
