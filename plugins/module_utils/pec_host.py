# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-side facts about a PEC server: systemd units, HTTP endpoint, disk space, local fact files."""

from __future__ import annotations

import json
import os
import subprocess

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

ROLE_LOCAL = "local_server"
ROLE_CONSULTATION = "consultation"
ROLE_NONE = "none"


def parse_systemctl_show(text):
    """`systemctl show -p A -p B unit` output -> dict."""
    result = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            result[key.strip()] = value.strip()
    return result


def service_state(name, systemctl="systemctl"):
    """State of one systemd unit: exists, active_state, sub_state, enabled (unit file state)."""
    try:
        proc = subprocess.run(
            [systemctl, "show", "-p", "LoadState", "-p", "ActiveState", "-p", "SubState", "-p", "UnitFileState", name],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {
            "name": name,
            "exists": False,
            "active_state": "unknown",
            "sub_state": "unknown",
            "enabled": "unknown",
            "error": f"systemctl failed: {exc}",
        }
    info = parse_systemctl_show(proc.stdout)
    exists = info.get("LoadState", "not-found") not in ("not-found", "")
    return {
        "name": name,
        "exists": exists,
        "active_state": info.get("ActiveState", "unknown"),
        "sub_state": info.get("SubState", "unknown"),
        "enabled": info.get("UnitFileState", "") or "unknown",
    }


def parse_public_info(body):
    """JSON body of GET /api/public/info -> version string ('versao'), or None."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    if isinstance(data, dict):
        version = data.get("versao") or data.get("version")
        return str(version) if version is not None else None
    return None


def existing_parent(path):
    """path itself when it exists, else its nearest existing parent directory."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return probe


def disk_space(path):
    """Free and total bytes of the file system that holds path (or its nearest existing parent)."""
    probe = existing_parent(path)
    st = os.statvfs(probe)
    return {
        "path": path,
        "measured_at": probe,
        "exists": os.path.isdir(path),
        "free_bytes": st.f_bavail * st.f_frsize,
        "total_bytes": st.f_blocks * st.f_frsize,
    }


def read_fact_file(path):
    """A local fact file (JSON) as dict; None when absent; {'error': ...} when unreadable (never raises)."""
    try:
        return read_json(path, "fact file")
    except PecError as exc:
        return {"error": f"cannot read {path}: {exc.__cause__}"}


def classify_role(installed, migration_fact):
    """The host's PEC role: no PEC, migrated consultation server, or local server in use."""
    if not installed:
        return ROLE_NONE
    if isinstance(migration_fact, dict) and migration_fact.get("migrated") is True:
        return ROLE_CONSULTATION
    return ROLE_LOCAL


def versions_agree(versions):
    """versions: dict source -> version or None. Agree when every known one is equal (at least one known)."""
    known = {v for v in versions.values() if v}
    return len(known) == 1, (known.pop() if len(known) == 1 else None)
