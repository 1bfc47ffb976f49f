#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_info
short_description: Report the state of a PEC e-SUS APS install
version_added: 0.1.0
description:
  - Reads, without changing anything, what a UBS server runs of the PEC e-SUS APS.
  - Reports the installed version as the installer config (C(/etc/pec.config)), the database
    (C(tb_config_sistema) key C(VERSAOBANCODADOS)) and the HTTP endpoint (C(/api/public/info)) each see it,
    and whether they agree.
  - Reports install paths, the state of the application and database services, the database connection
    parameters (never the password), the database size, free disk where backups go, the last backup
    and migration status recorded by this collection, and the host's PEC role.
  - A host without the PEC is not an error; its role is then C(none).
  - Problems (database down, credentials unreadable, endpoint not answering) are listed in RV(pec.problems);
    O(fail_on) turns chosen ones into a task failure.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  backup_dir:
    description:
      - Where backups of this server are written; its file system's free space is reported.
    type: path
    default: /var/backups/esus
  version_key:
    description:
      - Key of C(tb_config_sistema) that holds the database version (unconfirmed for 4.5.2).
    type: str
    default: VERSAOBANCODADOS
  info_path:
    description:
      - Path of the public information endpoint under O(http_url) (unconfirmed for 4.5.2).
    type: str
    default: /api/public/info
  http_timeout:
    description:
      - Seconds to wait for the HTTP endpoint.
    type: int
    default: 10
  facts_dir:
    description:
      - Directory of Ansible local facts where this collection records backup and migration status.
    type: path
    default: /etc/ansible/facts.d
  fail_on:
    description:
      - Problems that fail the task instead of only being reported.
      - C(missing) no PEC install; C(database) database unreachable or credentials unreadable;
        C(http) endpoint not answering; C(version_mismatch) sources disagree on the version;
        C(services) a PEC service not active.
    type: list
    elements: str
    choices: [missing, database, http, version_mismatch, services]
    default: []
"""

EXAMPLES = r"""
- name: Inventory the PEC on every UBS server
  sesdf.esus.pec_info:
  register: pec

- name: Show versions
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: {{ pec.pec.version.consensus | default('?') }} ({{ pec.pec.role }})"

- name: Fail when the PEC is not healthy before an upgrade
  sesdf.esus.pec_info:
    fail_on: [missing, database, version_mismatch]

# The PEC options once for every module of the action group sesdf.esus.pec (meta/runtime.yml), e.g. from the
# collection's inventory variables (docs/pec-facts.md).
- name: Modules of the PEC installed with non-default unit names
  module_defaults:
    group/sesdf.esus.pec:
      pec_root: "{{ sesdf_esus_pec_root | default('/opt/e-SUS') }}"
      app_service: e-SUS-PEC-custom.service
      db_service: e-SUS-PEC-db-custom.service
  block:
    - name: Inventory the PEC
      sesdf.esus.pec_info:
      register: pec

    - name: Verify the newest backup
      sesdf.esus.pec_backup_verify:
        path: "{{ pec.pec.backup_status.path }}"
"""

RETURN = r"""
pec:
  description: What was found.
  returned: always
  type: dict
  contains:
    installed:
      description: Whether a PEC install was found (config file or webserver directory).
      type: bool
      sample: true
    role:
      description: C(local_server) (PEC in use), C(consultation) (migrated, kept to consult records) or C(none).
      type: str
      sample: local_server
    version:
      description: Version per source, whether the known ones agree, and the agreed version.
      type: dict
      sample: {config: 4.2.8, database: 4.2.8, http: 4.2.8, agree: true, consensus: 4.2.8}
    paths:
      description: Install paths.
      type: dict
      sample:
        {root: /opt/e-SUS, config: /etc/pec.config,
         pg_bin_dir: /opt/e-SUS/database/postgresql-9.6.13-1-linux-x64/bin}
    services:
      description: State of the application and database units.
      type: dict
      sample: {app: {name: e-SUS-PEC.service, exists: true, active_state: active, sub_state: running, enabled: enabled}}
    database:
      description: Connection parameters (no password), reachability and size.
      type: dict
      sample: {host: localhost, port: 5433, name: esus, user: postgres, reachable: true, size_bytes: 73400320}
    http:
      description: The public information endpoint.
      type: dict
      sample: {url: "http://127.0.0.1:8080/api/public/info", reachable: true, status: 200}
    backup_dir:
      description: Free and total bytes of the file system holding the backup directory.
      type: dict
      sample: {path: /var/backups/esus, exists: true, free_bytes: 53687091200, total_bytes: 107374182400}
    backup_status:
      description:
        - The backup status recorded on the server by this collection's backup jobs (role sesdf.esus.backup and the
          sesdf.esus.backup_schedule job), or null; C(age_hours) is added (hours since C(last_success)).
      type: dict
    migration:
      description: The migration record written by the decommission role, or null.
      type: dict
    problems:
      description: Every problem found, each with a code and a message that says what to do.
      type: list
      elements: dict
      sample: [{code: database, msg: "database localhost:5433/esus is not accepting connections ..."}]
executed_queries:
  description: SQL statements run against the database (read-only).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.sesdf.esus.plugins.module_utils.pec_backup import status_age_hours
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import (
    PecError,
    pec_argument_spec,
    version_tuple,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient, sql_literal
from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import (
    classify_role,
    disk_space,
    parse_public_info,
    read_fact_file,
    service_state,
    versions_agree,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall

BACKUP_FACT = "sesdf_esus_backup.fact"
MIGRATION_FACT = "sesdf_esus_migration.fact"


def _normalize(version):
    parts = version_tuple(version)
    return ".".join(str(p) for p in parts) if parts else None


def _backup_status(path):
    """The backup status fact file, with age_hours (hours since last_success) added."""
    status = read_fact_file(path)
    if isinstance(status, dict) and "error" not in status:
        status["age_hours"] = status_age_hours(status)
    return status


def gather(module):
    params = module.params
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
            "app": service_state(params["app_service"]),
            "database": service_state(params["db_service"]),
        },
        "database": {"reachable": False},
        "http": {"url": params["http_url"].rstrip("/") + params["info_path"], "reachable": False},
        "backup_dir": disk_space(params["backup_dir"]),
        "backup_status": _backup_status(os.path.join(facts_dir, BACKUP_FACT)),
        "migration": migration,
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
        with PgClient(bin_dir, conn, timeout=30) as client:
            result["version"]["database"] = client.scalar(
                "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = " + sql_literal(params["version_key"])
            )
            size = client.scalar("SELECT pg_database_size(current_database())")
            result["database"]["size_bytes"] = int(size) if size is not None else None
            result["database"]["reachable"] = True
            executed = client.executed_queries
    except PecError as exc:
        result["database"]["error"] = exc.msg
        problems.append({"code": "database", "msg": exc.msg})

    url = result["http"]["url"]
    try:
        response = open_url(url, method="GET", timeout=params["http_timeout"], validate_certs=False)
        body = response.read()
        result["http"].update({"reachable": True, "status": response.getcode()})
        result["version"]["http"] = parse_public_info(body)
        if result["version"]["http"] is None:
            problems.append({"code": "http", "msg": f"{url} answered without a 'versao' field"})
    except Exception as exc:
        status = getattr(exc, "code", None)
        result["http"].update({"status": status, "error": str(exc)})
        problems.append(
            {
                "code": "http",
                "msg": f"PEC application does not answer at {url} ({exc}); check {params['app_service']} and its log",
            }
        )

    sources = {k: _normalize(result["version"][k]) for k in ("config", "database", "http")}
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
    for key in ("app", "database"):
        unit = result["services"][key]
        if unit["active_state"] != "active":
            problems.append(
                {
                    "code": "services",
                    "msg": f"{unit['name']} is {unit['active_state']}; see: journalctl -u {unit['name']}",
                }
            )
    return result, executed


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        backup_dir=dict(type="path", default="/var/backups/esus"),
        version_key=dict(type="str", default="VERSAOBANCODADOS", no_log=False),
        info_path=dict(type="str", default="/api/public/info"),
        http_timeout=dict(type="int", default=10),
        facts_dir=dict(type="path", default="/etc/ansible/facts.d"),
        fail_on=dict(
            type="list",
            elements="str",
            default=[],
            choices=["missing", "database", "http", "version_mismatch", "services"],
        ),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        pec, executed = gather(module)
    except PecError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    blocking = [p for p in pec["problems"] if p["code"] in module.params["fail_on"]]
    if blocking:
        module.fail_json(msg="; ".join(p["msg"] for p in blocking), pec=pec, executed_queries=executed)
    module.exit_json(changed=False, pec=pec, executed_queries=executed)


if __name__ == "__main__":
    main()
