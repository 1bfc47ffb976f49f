#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_survey
short_description: Survey a PEC e-SUS APS server, read-only, into a bundle without patient data or secrets
version_added: 0.3.0
description:
  - Reads, without changing anything, what the collection needs to know of a real PEC server and can only assume
    today (docs/pec-facts.md). Run it on one server per PEC version, keep the bundle (RV(bundle)) and turn it into a
    capability profile with the filter C(sesdf.esus.capability_profile) (playbook C(playbooks/survey.yml)).
  - Gathers the PEC's versions (the version keys of O(pec_config_path), the database's C(VERSAOBANCODADOS) and the
    C(versao) of the version endpoint), the listening TCP ports (from C(/proc/net/tcp) and C(tcp6); the bind address
    only as C(any), C(loopback) or C(host)), the HTTP status and content type of O(http_paths) on O(http_url) and,
    on a certmgr install (5.3+), on O(https_url), the installer's C(-help) when O(installer) is given, the key names
    of O(pec_config_path), C(application.properties) and the certmgr's C(ssl.properties), which known paths of the
    PEC's tree exist and the PEC's systemd unit file names.
  - Describes every table the collection reads or writes (the write capabilities' tables, the transmission, identity
    and profile tables, O(extra_tables)) - columns, types, nullability, primary and foreign keys and the catalog's
    row estimate (C(pg_class.reltuples); no table is counted) - and lists by name every table whose name starts with
    C(tb_lote), C(tb_dado), C(tb_nodo), C(tb_situacao) or C(tb_envio). A table the database lacks is recorded as
    null, not as an error.
  - Reads reference rows that are not patient data, when their tables exist - the names of the C(tb_config_sistema)
    keys (never their values), the C(no_*) and C(co_*) columns of C(tb_nodo) (the destination nodes) and the rows of
    C(tb_situacao_lote_transp_nodo) and C(tb_situacao_lote_transp) (at most O(reference_row_limit) each).
  - Lists the files under O(pec_root) that look like lotes (C(*.esus), C(RAS_Lote*), C(*.zip) under C(webserver/)) -
    relative path, size and mtime of at most O(files_limit), and how many there are.
  - Never collects a row of a patient table, the value of a configuration key, a password, a CPF or the hostname
    (C(host_fingerprint) is its sha256). The database is read through the PEC's own C(psql) in a read-only session;
    every string of the bundle has the install's secrets and the hostname masked and digit runs of 11 or more
    (CPF, CNS) replaced. The bundle stays under 1 MB.
  - Every probe that fails is recorded in C(errors) and the survey goes on; a server whose database is down still
    gives the rest of the bundle.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode. C(changed) is always false.
  diff_mode:
    support: none
options:
  https_url:
    description:
      - The PEC's URL from the server itself when the PEC manages its own HTTPS certificate (certmgr, 5.3+, where
        C(webserver/certmgr/config/ssl.properties) exists under O(pec_root)); then asked too, besides O(http_url).
        Its certificate is not validated.
    type: str
    default: https://127.0.0.1:443
  http_paths:
    description:
      - Paths asked under each URL (GET, no redirect followed); only the status and the content type are kept.
    type: list
    elements: str
    default: [/, /esus/, /api/public/info, /api/graphql, /api/recebimento/login]
  info_path:
    description:
      - The path of O(http_paths) whose JSON answer's C(versao) is kept (nothing else of any answer is).
    type: str
    default: /api/public/info
  http_timeout:
    description:
      - Seconds to wait for each HTTP answer.
    type: int
    default: 10
  version_key:
    description:
      - Key of C(tb_config_sistema) that holds the database version (unconfirmed for 4.5.2).
    type: str
    default: VERSAOBANCODADOS
  db_timeout:
    description:
      - Seconds any one query may run (also the session's C(statement_timeout)).
    type: int
    default: 60
  extra_tables:
    description:
      - Tables to describe besides the built-in list (their schema only, never their rows).
    type: list
    elements: str
    default: []
  reference_row_limit:
    description:
      - Rows read at most of each reference table (C(tb_nodo), C(tb_situacao_lote_transp_nodo),
        C(tb_situacao_lote_transp)); more are reported as C(truncated).
    type: int
    default: 200
  installer:
    description:
      - Path of a PEC installer jar on the server (C(eSUS-AB-PEC-<version>-Linux64.jar)); when given, its C(-help) is
        run (no input, a throw-away working directory, O(installer_timeout)) and its output kept, redacted and cut to
        O(installer_output_limit) characters.
    type: path
  java_bin:
    description:
      - Java that runs O(installer). When not set, the system's C(java), then the C(jreDirectory) of
        O(pec_config_path), then C(jre/current) under O(pec_root).
    type: path
  installer_timeout:
    description:
      - Seconds the installer's C(-help) may run.
    type: int
    default: 120
  installer_output_limit:
    description:
      - Characters of the installer's C(-help) output kept (after redaction).
    type: int
    default: 4096
  files_limit:
    description:
      - Lote-like files listed at most (all are counted).
    type: int
    default: 200
  facts_dir:
    description:
      - Directory of this collection's state files on the server; only the names of the C(sesdf_esus_*.fact) files
        there are reported (whether the collection already ran on this server).
    type: path
    default: /etc/ansible/facts.d
notes:
  - Run with C(become) - the PEC's files and its database credentials are root-only.
  - The hostname's sha256 is no secret against someone who can guess names; it tells bundles of one server apart.
"""

EXAMPLES = r"""
- name: Survey this PEC server (read-only)
  sesdf.esus.pec_survey:
  become: true
  register: survey

- name: Survey with the installer of the version in use
  sesdf.esus.pec_survey:
    installer: /root/eSUS-AB-PEC-5.5.28-Linux64.jar
  become: true
  register: survey

- name: The capability profile of this server
  ansible.builtin.debug:
    msg: "{{ survey.bundle | sesdf.esus.capability_profile }}"
"""

RETURN = r"""
bundle:
  description:
    - The survey (C(format) 1), with no patient data and no secret. Top-level keys - C(format), C(surveyed_at),
      C(host_fingerprint) (sha256 of the hostname), C(pec) (versions per source, the agreed C(version), layout,
      client tools, JRE, unit names, the database's server version, schema name and size), C(http) (per URL and
      path the status and content type; C(versao)), C(ports), C(installer_help) (null without O(installer)),
      C(config_keys) (key names per file, null when the file is absent), C(schema) (per table, null when absent),
      C(reference) (C(transmission_tables), C(config_sistema_keys), C(tb_nodo), C(tb_situacao_lote_transp_nodo),
      C(tb_situacao_lote_transp); null when the table is absent), C(files) and C(errors) (C(probe), C(msg)).
    - C(schema) and C(reference) are empty when the database could not be read (then C(errors) says why).
  returned: always
  type: dict
  sample:
    format: 1
    surveyed_at: "2026-12-01T13:00:00Z"
    host_fingerprint: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    pec: {version: 5.5.28, versions: {config: {version: 5.5.28}, database: 5.5.28, http: 5.5.28},
          versions_agree: true, psql_version: psql (PostgreSQL) 9.6.13}
    http: {certmgr: false, base_url: "http://127.0.0.1:8080", versao: 5.5.28,
           targets: {"http://127.0.0.1:8080": {/esus/: {status: 401, content_type: null}}}}
    ports: [{port: 5433, family: ipv4, bind: loopback}, {port: 8080, family: ipv6, bind: any}]
    installer_help: null
    config_keys: {pec_config: [databaseUrl, jreDirectory, success, version], application_properties: [server.port],
                  certmgr: null}
    schema: {tb_lote_transp: {columns: {co_seq_lote_transp: {type: bigint, nullable: false}},
             primary_key: [co_seq_lote_transp], foreign_keys: [], approx_rows: 1200}, tb_situacao_lote_transp: null}
    reference: {config_sistema_keys: [LINKINSTALACAO, VERSAOBANCODADOS], tb_situacao_lote_transp: null}
    files: {root: /opt/e-SUS, count: 0, listed: [], truncated: false}
    errors: []
executed_queries:
  description: SQL statements run against the database (all read-only).
  returned: always
  type: list
  elements: str
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.pec_survey import argument_spec, gather


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    bundle, executed = gather(module.params, socket.gethostname())
    module.exit_json(changed=False, bundle=bundle, executed_queries=executed)


if __name__ == "__main__":
    main()
