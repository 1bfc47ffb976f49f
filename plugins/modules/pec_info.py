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
  - Every query of one run (version, size, schema probe, monthly production) goes through one C(psql) process and
    one database connection; a failed query ends that C(psql), and the next query opens a new one.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - sesdf.esus.schema_trust
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: >-
      Read-only, but for the cache of the backup archive's last full checksum check (O(backup_check_cache));
      runs the same in check mode.
  diff_mode:
    support: none
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
  start_page_path:
    description:
      - Path of the PEC's start page under the PEC's URL. Where the version endpoint does not answer with a C(versao)
        (4.x; unconfirmed for 4.5.2), the application answers when this page gives one of O(ready_statuses).
    type: str
    default: /esus/
  ready_statuses:
    description:
      - HTTP statuses of the start page that mean the application is up. A real 5.4.37 answers 401 to an anonymous
        GET of C(/esus/); a login page may answer 200 or redirect (302).
    type: list
    elements: int
    default: [200, 302, 401]
  https_url:
    description:
      - The PEC's URL from the server itself when the PEC manages its own HTTPS certificate (certmgr, 5.3+, where
        C(webserver/certmgr/config/ssl.properties) exists under O(pec_root)); such an install serves 80/443, and this
        URL is used instead of O(http_url). Its certificate is not validated (it names the server's public name).
    type: str
    default: https://127.0.0.1:443
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
  backup_full_check_hours:
    description:
      - The archive the backup status names is checked on every run (it exists, its manifest exists, its size and
        mtime are the recorded ones); its full sha256 is computed again when the last full check is older than this
        many hours, or at once when its size or mtime changed. C(0) hashes it on every run.
    type: int
    default: 24
  backup_check_cache:
    description:
      - File keeping the time and outcome of the last full sha256 check of the backup archive (so a multi-GB archive
        is not hashed on every run); empty to keep none (then every run past the cadence hashes it).
    type: path
    default: /var/lib/sesdf-esus/backup-check.json
  app_stop_marker:
    description:
      - The marker this collection writes while it keeps the application stopped (see M(sesdf.esus.pec_backup));
        reported in RV(pec.services) (C(app.stopped_by_collection)) and in the problem of a stopped application.
    type: path
    default: /var/lib/sesdf-esus/app-stopped.json
  state_cadence_hours:
    description:
      - Hours after which a concern's recorded state is reported stale (RV(pec.state)), per concern; overrides the
        defaults (backup 26, cnes 192, hardening 192, maintenance 192, lotes 192, profiles 768, readiness 768;
        migration and upgrade never go stale). C(null) for a concern makes it never stale.
    type: dict
    default: {}
  production:
    description:
      - Also read the monthly production (RV(pec.production)), read-only, with grouped queries bounded to the last
        O(production_months) months. Off by default; the site playbook turns it on for the managers' report.
    type: bool
    default: false
  production_months:
    description:
      - Months of production to read, the current one included.
    type: int
    default: 12
  lotes_ledger:
    description:
      - The lotes ledger of M(sesdf.esus.pec_lotes); its confirmations count a month's records as sent.
    type: path
    default: /var/lib/sesdf-esus/lotes/ledger.json
  lote_sent_situation:
    description:
      - Name of the lote situation (C(tb_situacao_lote_transp.no_situacao)) the PEC gives a lote it sent itself
        (unconfirmed for 4.5.2).
    type: str
    default: ENVIADO
  cds_deadline_day:
    description:
      - Day of the next month by which a month's production must be in (the note's CDS deadline).
    type: int
    default: 10
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
      sample: {app: {name: e-SUS-PEC.service, exists: true, active_state: active, sub_state: running, enabled: enabled,
                     stopped_by_collection: null}}
    jobs:
      description:
        - The collection's server jobs as systemd sees them (docs/jobs.md), one per C(sesdf-esus-*.timer) - when it
          last ran and how it ended (the exit codes of every job), when it runs next, and C(state) V(ok),
          V(falhou) (its unit is left failed), V(instalado) (not run yet) or V(desativado) (its timer is off).
        - C(verifiable) is false, with C(error), when systemctl could not be asked; a job scheduled by cron has no
          units and is not listed.
      type: dict
      sample: {verifiable: true, error: null, jobs: {sesdf-esus-lotes: {scheduled: true, last_run: null,
               last_trigger: null, next_run: "Mon 2026-12-14 06:30:00 UTC", exit_status: null, exit_meaning: null,
               failed: false, state: instalado}}}
    database:
      description: Connection parameters (no password), reachability and size.
      type: dict
      sample: {host: localhost, port: 5433, name: esus, user: postgres, reachable: true, size_bytes: 73400320}
    http:
      description:
        - Whether the application answers, and how it was told (C(how)) - C(info_endpoint), the version endpoint gave
          a C(versao); C(start_page), the start page answered one of O(ready_statuses); null, it does not answer.
        - C(url) is the PEC's base URL (O(https_url) on a certmgr install); C(reachable) equals C(answers).
      type: dict
      sample: {url: "http://127.0.0.1:8080", answers: true, reachable: true, how: start_page, version: null,
               info_status: 404, page_status: 401, error: null}
    backup_dir:
      description: Free and total bytes of the file system holding the backup directory.
      type: dict
      sample: {path: /var/backups/esus, exists: true, free_bytes: 53687091200, total_bytes: 107374182400}
    backup_status:
      description:
        - The backup status recorded on the server by this collection's backup jobs (role sesdf.esus.backup and the
          sesdf.esus.backup_schedule job), or null; C(age_hours) is added (hours since C(last_success)).
        - What it claims is checked again on every run against the archive on disk (see O(backup_full_check_hours));
          C(check) is C(ok), C(mismatch) (size, mtime-triggered or periodic sha256 differ from the manifest),
          C(missing_manifest) (the archive is then unverified) or C(missing_archive) (null when no backup is
          recorded); C(verified) is true only when C(check) is C(ok); C(verified_at) is the last full sha256 check
          that passed (the backup itself or a later check), C(checked_at) this run, C(full_check_at) the last full
          check, C(check_detail) what differs.
      type: dict
      sample:
        {last_result: ok, verified: true, check: ok, verified_at: "2026-03-01T02:00:05Z",
         checked_at: "2026-03-01T09:00:00Z", age_hours: 7.0}
    migration:
      description: The migration record written by the decommission role, or null.
      type: dict
    state:
      description:
        - What this collection's roles and jobs recorded on the server, per concern (C(backup), C(migration),
          C(cnes), C(hardening), C(maintenance), C(profiles), C(lotes), C(upgrade), C(readiness),
          C(central_profiles), C(manual_steps) - the steps this PEC refused to the collection and who confirmed
          them), each with C(present), C(path), C(produced_at) (when the result last changed), C(confirmed_at)
          (when a producer last confirmed it), C(age_hours), C(cadence_hours), C(stale) (older than its cadence, so
          not to be read as fine), C(data) and, for an unreadable file, C(error). See the module_utils C(pec_state).
      type: dict
      sample:
        {hardening: {present: true, produced_at: "2026-11-30T02:00:00Z", confirmed_at: "2026-12-01T02:00:00Z",
         age_hours: 7.0, cadence_hours: 192, stale: false, data: {summary: {pass: 40, fail: 1}}}}
    production:
      description:
        - With O(production), the monthly production; null otherwise. C(teams) per INE with C(months)
          (C(produced) attendances per month); C(units) per CNES with C(months) (transmission records C(produced),
          C(sent) in a lote confirmed at the destination or marked sent by the PEC, C(pending)); C(previous_month)
          with the CDS C(deadline), C(days_left) (negative when overdue) and C(complete); C(teams_unavailable) or
          C(units_unavailable) when the schema lacks what the view needs.
      type: dict
      sample:
        {available: true, months: ["2025-12", "2026-11"], teams: [{ine: "0001234567", name: ESF 1,
         months: {"2026-11": {produced: 212}}}], units: [{cnes: "0010001", months: {"2026-11": {produced: 300,
         sent: 280, pending: 20}}}], previous_month: {month: "2026-11", deadline: "2026-12-10", days_left: 9,
         complete: false}}
    capabilities:
      description:
        - Per capability that writes into the PEC's internals (C(create_lotes), C(mark_lotes_sent),
          C(change_profiles), C(transmission_off), C(cnes_profile_reset_off)), whether this server's live schema
          matches a known profile (read-only probe of information_schema, C(pec_compat)), with C(supported),
          C(version), C(profile), C(missing) (what the schema lacks), C(manual) (the path in the PEC's UI to do it by
          hand) and C(reason) (why it is refused). Not probed (all unsupported) when the database is unreachable.
      type: dict
      sample:
        {transmission_off: {capability: transmission_off, supported: false, version: 4.5.2,
         missing: ["key TRANSMISSAO_AUTOMATICA in tb_config_sistema"],
         manual: "Transmissão de dados → Configurações", reason: "transmission_off refused on this server ..."}}
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._paths import (
    APP_STOP_MARKER,
    BACKUP_CHECK_CACHE,
    BACKUP_DIR,
    FACTS_DIR,
    LOTES_LEDGER,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import schema_trust_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_info import gather


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(schema_trust_argument_spec())
    argument_spec.update(
        backup_dir=dict(type="path", default=BACKUP_DIR),
        version_key=dict(type="str", default="VERSAOBANCODADOS", no_log=False),
        info_path=dict(type="str", default="/api/public/info"),
        start_page_path=dict(type="str", default="/esus/"),
        ready_statuses=dict(type="list", elements="int", default=[200, 302, 401]),
        https_url=dict(type="str", default="https://127.0.0.1:443"),
        http_timeout=dict(type="int", default=10),
        facts_dir=dict(type="path", default=FACTS_DIR),
        backup_full_check_hours=dict(type="int", default=24),
        backup_check_cache=dict(type="path", default=BACKUP_CHECK_CACHE),
        app_stop_marker=dict(type="path", default=APP_STOP_MARKER),
        state_cadence_hours=dict(type="dict", default={}),
        production=dict(type="bool", default=False),
        production_months=dict(type="int", default=12),
        lotes_ledger=dict(type="path", default=LOTES_LEDGER),
        lote_sent_situation=dict(type="str", default="ENVIADO"),
        cds_deadline_day=dict(type="int", default=10),
        fail_on=dict(
            type="list",
            elements="str",
            default=[],
            choices=["missing", "database", "http", "version_mismatch", "services"],
        ),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        pec, executed = gather(module.params)
    except PecError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    blocking = [p for p in pec["problems"] if p["code"] in module.params["fail_on"]]
    if blocking:
        module.fail_json(msg="; ".join(p["msg"] for p in blocking), pec=pec, executed_queries=executed)
    module.exit_json(changed=False, pec=pec, executed_queries=executed)


if __name__ == "__main__":
    main()
