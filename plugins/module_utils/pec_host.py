# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-side facts about a PEC server: systemd units, HTTP endpoint, disk space, local fact files."""

from __future__ import annotations

import json
import os

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json
from ansible_collections.sesdf.esus.plugins.module_utils._job import EXIT_MEANING
from ansible_collections.sesdf.esus.plugins.module_utils._runner import Runner
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
    proc = Runner().run(
        [systemctl, "show", "-p", "LoadState", "-p", "ActiveState", "-p", "SubState", "-p", "UnitFileState", name],
        timeout=30,
    )
    if proc.rc is None:
        return {
            "name": name,
            "exists": False,
            "active_state": "unknown",
            "sub_state": "unknown",
            "enabled": "unknown",
            "error": proc.why(f"systemctl show {name}"),
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


# The collection's server jobs (docs/jobs.md): their units are sesdf-esus-<job>.timer and .service.
JOB_TIMERS = "sesdf-esus-*.timer"
_JOB_PROPERTIES = (
    "Id",
    "UnitFileState",
    "ActiveState",
    "Result",
    "ExecMainStatus",
    "ExecMainExitTimestamp",
    "LastTriggerUSec",
    "NextElapseUSecRealtime",
)


def _when(value):
    """A systemd time stamp as systemctl prints it, or None for never ('', 'n/a', '0')."""
    value = (value or "").strip()
    return None if value in ("", "n/a", "0") else value


def _systemctl_failure(proc, what):
    return proc.why(what) if proc.rc is None else (proc.stderr or proc.stdout).strip()[:300]


def job_states(runner=None, systemctl="systemctl"):
    """The server jobs as systemd sees them: ``{"verifiable", "error", "jobs": {name: {...}}}``.

    Each job: ``scheduled`` (its timer enabled and waiting), ``last_run`` (when its service last ended, None before
    the first run), ``next_run``, ``exit_status`` and its meaning (module_utils/_job.py), ``failed`` (the unit is
    left failed: every exit code but 0), and ``state``: ``ok``, ``falhou``, ``instalado`` (not run yet) or
    ``desativado`` (its timer is not enabled). A job scheduled by cron has no units: it is not listed. When systemctl
    cannot be asked, ``verifiable`` is False and nothing is guessed.

    The timers come from their unit files (a pattern given to ``systemctl show`` matches only active units: an
    inactive service, or a stopped timer, would be missed), then every timer and its service by name.
    """
    runner = runner or Runner()
    listed = runner.run([systemctl, "list-unit-files", "--no-legend", "--plain", JOB_TIMERS], timeout=30)
    # rc 1 and nothing said: no unit file matches (no job on this server)
    if listed.rc not in (0, 1) or (listed.rc == 1 and (listed.stdout + listed.stderr).strip()):
        return {"verifiable": False, "error": _systemctl_failure(listed, "systemctl list-unit-files"), "jobs": {}}
    timers = [
        fields[0] for fields in map(str.split, listed.stdout.splitlines()) if fields and fields[0].endswith(".timer")
    ]
    if not timers:
        return {"verifiable": True, "error": None, "jobs": {}}
    names = [t for timer in timers for t in (timer, timer[: -len(".timer")] + ".service")]
    argv = [systemctl, "show", *(arg for prop in _JOB_PROPERTIES for arg in ("-p", prop)), *names]
    proc = runner.run(argv, timeout=30)
    if proc.rc != 0:
        return {"verifiable": False, "error": _systemctl_failure(proc, "systemctl show"), "jobs": {}}
    units = {}
    for block in proc.stdout.split("\n\n"):
        info = parse_systemctl_show(block)
        name, _sep, kind = info.get("Id", "").rpartition(".")
        if name and kind in ("timer", "service"):
            units.setdefault(name, {})[kind] = info
    jobs = {}
    for name, parts in sorted(units.items()):
        timer, service = parts.get("timer"), parts.get("service") or {}
        if timer is None:
            continue
        try:
            status = int(service.get("ExecMainStatus") or 0)
        except ValueError:
            status = None
        last_run = _when(service.get("ExecMainExitTimestamp"))
        failed = service.get("ActiveState") == "failed"
        scheduled = timer.get("UnitFileState") == "enabled" and timer.get("ActiveState") == "active"
        if not scheduled:
            state = "desativado"
        elif failed:
            state = "falhou"
        elif last_run is None:
            state = "instalado"
        else:
            state = "ok"
        jobs[name] = {
            "scheduled": scheduled,
            "last_run": last_run,
            "last_trigger": _when(timer.get("LastTriggerUSec")),
            "next_run": _when(timer.get("NextElapseUSecRealtime")),
            "exit_status": status if last_run else None,
            "exit_meaning": EXIT_MEANING.get(status, f"código {status}") if last_run else None,
            "failed": failed,
            "state": state,
        }
    return {"verifiable": True, "error": None, "jobs": jobs}


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


# What a running PEC answers on its start page to an anonymous GET: 200 (a login page), 302 (a redirect to it) or
# 401 (a real 5.4.37 on /esus/). Any of them is a PEC that is up; 404, 5xx and no answer are not.
READY_STATUSES = (200, 302, 401)
# The certmgr of 5.3+ (HTTPS managed by the PEC itself) keeps its settings here, under the PEC's root.
CERTMGR_CONFIG = "webserver/certmgr/config/ssl.properties"


def certmgr_config(pec_root):
    """The certmgr settings file of an HTTPS install (5.3+), or None on a plain HTTP install."""
    path = os.path.join(pec_root or "", CERTMGR_CONFIG)
    return path if os.path.isfile(path) else None


def base_url(pec_root, http_url, https_url):
    """The URL the PEC serves on this server: ``https_url`` when its certmgr is set up (it then serves 443, not
    8080), else ``http_url``."""
    return (https_url if certmgr_config(pec_root) else http_url).rstrip("/")


def probe_http(url, info_path, page_path, http_get, timeout, ready_statuses=READY_STATUSES):
    """Whether the PEC application answers, from what a real PEC gives: the version endpoint with a ``versao`` where
    it exists (5.x), otherwise its start page answering one of ``ready_statuses``. ``http_get(url, timeout)`` returns
    (status, body) for any HTTP answer and raises only when nothing answered.

    Returns {url, answers, how: info_endpoint|start_page|None, version (from the endpoint), info_status,
    page_status, error}."""
    out = {"url": url, "answers": False, "how": None, "version": None, "info_status": None, "page_status": None}
    errors = []
    try:
        status, body = http_get(url + info_path, timeout)
        out["info_status"] = status
        out["version"] = parse_public_info(body) if status == 200 else None
        if out["version"]:
            out.update(answers=True, how="info_endpoint")
            return dict(out, error=None)
    except Exception as exc:  # nothing answered: said below with the start page's outcome
        errors.append(f"{url + info_path}: {exc}")
    try:
        status, _body = http_get(url + page_path, timeout)
        out["page_status"] = status
        if status in ready_statuses:
            out.update(answers=True, how="start_page")
        else:
            errors.append(f"{url + page_path} answered {status}")
    except Exception as exc:
        errors.append(f"{url + page_path}: {exc}")
    return dict(out, error=None if out["answers"] else "; ".join(errors))


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
