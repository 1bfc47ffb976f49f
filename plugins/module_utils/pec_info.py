# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the pec_info module reports about a host: install, versions per source, services, database, HTTP,
backup status and migration record, with every problem found (a code and what to do)."""

from __future__ import annotations

import os

from ansible_collections.sesdf.esus.plugins.module_utils.pec_app_stop import DEFAULT_MARKER, read_marker
from ansible_collections.sesdf.esus.plugins.module_utils.pec_backup_status import (
    DEFAULT_CHECK_CACHE,
    DEFAULT_FULL_CHECK_HOURS,
    recheck_status,
    status_age_hours,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, normalize_version
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import CAPABILITIES, Probe
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient, version_and_size
from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import (
    base_url,
    classify_role,
    disk_space,
    job_states,
    probe_http,
    read_fact_file,
    service_state,
    versions_agree,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall
from ansible_collections.sesdf.esus.plugins.module_utils.pec_production import gather as gather_production
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import read_states

BACKUP_FACT = "sesdf_esus_backup.fact"
MIGRATION_FACT = "sesdf_esus_migration.fact"


def _http_get(url, timeout):
    """GET with Ansible's open_url: (status, body) for any HTTP answer (401 and 404 included); raises only when
    nothing answered. Certificates are not validated: the PEC is asked on loopback, and an HTTPS install (certmgr)
    has a certificate for its public name."""
    from ansible.module_utils.six.moves.urllib.error import HTTPError
    from ansible.module_utils.urls import open_url

    try:
        response = open_url(url, method="GET", timeout=timeout, validate_certs=False, follow_redirects="none")
        return response.getcode(), response.read()
    except HTTPError as exc:
        return exc.code, exc.read() if exc.fp else b""


def _backup_status(path, params):
    """The backup status fact file, with what it claims re-checked on disk and age_hours added."""
    status = read_fact_file(path)
    if isinstance(status, dict) and "error" not in status:
        full_every = params.get("backup_full_check_hours")
        try:
            status = recheck_status(
                status,
                cache_path=params.get("backup_check_cache", DEFAULT_CHECK_CACHE),
                full_every_hours=DEFAULT_FULL_CHECK_HOURS if full_every is None else full_every,
            )
            status["age_hours"] = status_age_hours(status)
        except (TypeError, ValueError, AttributeError, KeyError, OSError) as exc:
            # a field of the wrong type (a date written as a number, a path that is not text): the status is kept as
            # it is, never as verified, and the inventory goes on; the report names the field (report_states)
            status = dict(
                status,
                verified=False,
                check=None,
                age_hours=None,
                check_detail=f"the backup status could not be checked: {type(exc).__name__}: {exc}",
            )
    return status


def _production(client, params, problems):
    """Monthly production (read-only); a query failure is a problem, never an abort of the inventory."""
    try:
        return gather_production(
            client,
            months=params.get("production_months") or 12,
            ledger_path=params.get("lotes_ledger"),
            sent_name=params.get("lote_sent_situation") or "ENVIADO",
            deadline_day=params.get("cds_deadline_day") or 10,
        )
    except PecError as exc:
        problems.append({"code": "production", "msg": f"monthly production could not be read: {exc.msg}"})
        return {"available": False, "error": exc.msg}


def gather(params, http_get=None, unit_state=service_state, jobs_probe=job_states):
    """Everything pec_info reports: (pec, executed_queries). Never raises for a broken server: problems say it.

    ``http_get(url, timeout) -> (status, body)``, ``unit_state(name)`` and ``jobs_probe()`` (the server jobs'
    units, docs/jobs.md) are the probes (faked in tests).
    """
    http_get = http_get or _http_get
    install = PecInstall(params)
    problems = []
    installed = install.present
    facts_dir = params["facts_dir"]
    migration = read_fact_file(os.path.join(facts_dir, MIGRATION_FACT))
    result = {
        "installed": installed,
        "role": classify_role(installed, migration),
        "paths": {
            "root": install.root,
            "config": install.config_path,
            "webserver": install.webserver_dir,
            "properties": install.properties_path,
            "credentials": install.credentials_path,
            "pg_bin_dir": None,
        },
        "version": {"config": None, "database": None, "http": None, "agree": False, "consensus": None},
        "services": {
            "app": unit_state(params["app_service"]),
            "database": unit_state(params["db_service"]),
        },
        "jobs": jobs_probe(),
        "database": {"reachable": False},
        "http": {"url": base_url(params["pec_root"], params["http_url"], params["https_url"]), "reachable": False},
        "backup_dir": disk_space(params["backup_dir"]),
        "backup_status": _backup_status(os.path.join(facts_dir, BACKUP_FACT), params),
        "migration": migration,
        "state": read_states(facts_dir, cadences=params.get("state_cadence_hours") or {}),
        "production": None,
        "capabilities": {},
        "problems": problems,
    }
    executed = []
    if not installed:
        problems.append(
            {
                "code": "missing",
                "msg": f"no PEC e-SUS install found ({install.config_path} and {install.webserver_dir} are absent)",
            }
        )
        return result, executed

    try:
        config = install.config()
        result["version"]["config"] = config.get("version")
        result["paths"]["jre"] = config.get("jreDirectory")
    except PecError as exc:
        problems.append({"code": "config", "msg": exc.msg})

    try:
        bin_dir = install.pg_bin_dir()
        result["paths"]["pg_bin_dir"] = bin_dir
        conn = install.connection()
        result["database"].update({k: conn[k] for k in ("host", "port", "name", "user")})
        # read-only, a dozen queries: one psql and one connection for all (PgClient's session)
        with PgClient(bin_dir, conn, timeout=30, session=True) as client:
            version, size = version_and_size(client, params["version_key"])
            result["version"]["database"] = version
            result["database"]["size_bytes"] = size
            result["database"]["reachable"] = True
            result["capabilities"] = Probe(
                client,
                params["version_key"],
                trust=params.get("schema_trust") or "survey",
                surveyed=params.get("capability_profiles"),
            ).report()
            if params.get("production"):
                result["production"] = _production(client, params, problems)
            executed = client.executed_queries
    except PecError as exc:
        result["database"]["error"] = exc.msg
        problems.append({"code": "database", "msg": exc.msg})
    if not result["capabilities"]:
        reason = "the database could not be read: the schema was not probed"
        result["capabilities"] = {
            name: {"capability": name, "supported": False, "missing": [], "manual": spec["manual"], "reason": reason}
            for name, spec in CAPABILITIES.items()
        }

    url = result["http"]["url"]
    probe = probe_http(
        url,
        params["info_path"],
        params["start_page_path"],
        http_get,
        params["http_timeout"],
        tuple(params["ready_statuses"]),
    )
    result["http"].update(probe, reachable=probe["answers"])
    result["version"]["http"] = probe["version"]
    if not probe["answers"]:
        problems.append(
            {
                "code": "http",
                "msg": f"PEC application does not answer at {url} ({probe['error']}); check {params['app_service']} "
                "and its log",
            }
        )

    sources = {k: normalize_version(result["version"][k]) for k in ("config", "database", "http")}
    agree, consensus = versions_agree(sources)
    result["version"]["agree"] = agree
    result["version"]["consensus"] = consensus
    if not agree and any(sources.values()):
        problems.append(
            {
                "code": "version_mismatch",
                "msg": "the PEC version differs between sources: "
                + ", ".join(f"{k}={v}" for k, v in sources.items() if v)
                + "; an interrupted update is likely: see the installer log",
            }
        )
    marker = read_marker(params.get("app_stop_marker") or DEFAULT_MARKER)
    result["services"]["app"]["stopped_by_collection"] = marker
    for key in ("app", "database"):
        unit = result["services"][key]
        if unit["active_state"] != "active":
            why = f"see: journalctl -u {unit['name']}"
            if key == "app" and marker:
                why = (
                    f"it was stopped by {marker.get('stopped_by', 'sesdf.esus')} ({marker.get('reason', '?')}, "
                    f"{marker.get('stopped_at', '?')}) and that run did not finish; the next backup run starts it, "
                    f"or: systemctl start {unit['name']}"
                )
            problems.append({"code": "services", "msg": f"{unit['name']} is {unit['active_state']}; {why}"})
    return result, executed
