# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup status fact file (``/etc/ansible/facts.d/sesdf_esus_backup.fact``): what the last run did.

Written by the backups (module and scheduled job), read by pec_info, the decommission check and monitoring.
"""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json
from ansible_collections.sesdf.esus.plugins.module_utils._job import write_status as write_job_status
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_iso, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

DEFAULT_FACT = "/etc/ansible/facts.d/sesdf_esus_backup.fact"


def read_status(path):
    """The status fact file as a dict; {} when absent or unreadable (a new one is then written)."""
    try:
        data = read_json(path, "backup status", missing={})
    except PecError:
        return {}
    return data if isinstance(data, dict) else {}


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
    write_job_status(path, status, mode=0o644, create_dir=True)
    return status


def status_age_hours(status, now=None):
    last = parse_iso((status or {}).get("last_success")) if isinstance(status, dict) else None
    if last is None:
        return None
    return round(((now or utcnow()) - last).total_seconds() / 3600, 2)
