#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_lotes
short_description: Export the PEC's unsent production as LEDI lote files and deliver them to NCAIS, verified
version_added: 0.1.0
description:
  - Ties the transmission rows not yet in a lote (C(tb_dado_transp.co_lote_transp IS NULL)) to new lotes in
    C(tb_lote_transp) (situation C(GERADO)), as the PEC's "Gerar novo lote" does, one statement per lote.
  - Writes each lote as a file in the LEDI layout (a zip of C(<uuid>.esus) entries, each the row's serialized
    C(DadoTransporte) bytes) plus a JSON manifest (id, period, record count, sha256), atomically, under O(state_dir).
  - Copies both to NCAIS's destination (a mounted directory, or rsync over SSH), reads the sha256 back AT the
    destination, and only then records the lote as confirmed in the ledger (C(state_dir/ledger.json), written
    atomically) and marks it C(ENVIADO) in the PEC.
  - A lote is sent again on every run until its arrival is verified, and never again once it is; a confirmed lote
    whose copy at the destination no longer matches its sha256 is sent again (one that disappeared is not, since NCAIS
    moves files away once imported). A destination that is down, or a transfer cut half-way, loses nothing.
  - Lotes left C(GERADO) in the PEC (made in its UI, or by a run killed after the database commit) are exported too.
  - Also reports the CDS deadline for the previous month per UBS (all its production confirmed by day O(deadline_day)).
  - The same code runs without Ansible as the weekly job of inapt UBS, on a systemd timer (see role
    sesdf.esus.lotes_export).
  - The export file name pattern of the real PEC is unknown (O(file_pattern)); the schema names are those of
    pec-facts.md, unconfirmed for 4.5.2.
  - "Sources (O(source)): V(db) is all of the above, on the old model of the full test double
    (C(tb_situacao_lote_transp), which real servers do not have: the read-only probe refuses it there). V(files) is
    the real PEC's model and never writes the PEC's tables (no INSERT, no UPDATE). It takes the lote files an
    operator saved from the PEC (Transmissão de dados → Gerar novo lote → Salvar em arquivo, a browser download
    C(RAS_Lote<N>_<dd-mm-yyyy>--<HH-MM>.zip)) and dropped into the inbox O(files_dir) (or a share mounted there),
    checks each by its content (every C(.esus) entry decoded strictly as a LEDI C(DadoTransporteThrift), every
    record's CNES this UBS's, INE and 7-digit IBGE well formed, uuids unique in the file, every record held by this
    PEC's database and in no other lote file), and delivers every valid one with the same ledger and verified
    transfer, once: the ledger section C(files) is keyed by the file's sha256, and each accepted file's record ids are
    kept beside the ledger. A file modified less than O(files_settle_seconds) ago, or with a hidden or temporary
    name, is skipped for this run; an invalid file is reported (name and reason, in Portuguese) and left in place,
    never sent, never deleted. At the destination a file is named
    C(<cnes>-<name without extension>-<first 12 hex digits of its sha256>.zip) with a C(.sha256) sidecar. V(auto) is
    V(db) when the read-only probe finds both C(create_lotes) and C(mark_lotes_sent) supported on this server,
    V(files) otherwise; the mode that ran is returned as RV(source)."
  - "File mode also returns the records gate (RV(gate)): every record the database holds (O(records_uuid_column)) is
    in a delivered lote file or, where O(node_query) lets the collection observe it, at a destination node; and the
    CDS deadline from the same facts: a record's month is the month the collection first saw it (real servers attest
    no date column for a record), records already there on the first run count for the gate only."
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - sesdf.esus.schema_trust
  - sesdf.esus.lotes_records
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: >-
      Counts what would be exported and sent; writes nothing, creates no lote, transfers nothing. In file mode the
      files are read and validated, nothing is copied and the ledger is not written; the C(to_send) list of
      RV(files) names what would be sent.
  diff_mode:
    support: none
options:
  source:
    description:
      - Where the lotes come from - V(db) (created by the collection in the PEC's tables, marked sent there),
        V(files) (the lote files saved from the PEC into the inbox, the PEC's tables only read) or V(auto) (V(db)
        when the probe
        supports C(create_lotes) and C(mark_lotes_sent) on this server, else V(files)).
    type: str
    choices: [auto, db, files]
    default: auto
  files_dir:
    description:
      - File mode - the inbox where the operator (or a share) drops the lote files the PEC's "Salvar em arquivo" gave
        the browser. A real PEC writes no lote directory of its own.
    type: path
    default: /var/lib/sesdf-esus/lotes/entrada
  files_glob:
    description:
      - File mode - the names of lote files in O(files_dir) (the PEC's C(RAS_Lote<N>_<dd-mm-yyyy>--<HH-MM>.zip)).
    type: str
    default: "RAS_Lote*.zip"
  files_settle_seconds:
    description:
      - File mode - a file modified less than this many seconds ago may still be being written; it is skipped this run.
    type: int
    default: 120
  state_dir:
    description: Root-only directory for the ledger and the lote files kept on the server.
    type: path
    default: /var/lib/sesdf-esus/lotes
  destination:
    description:
      - Where NCAIS receives the lotes. C(type=path) with C(path) (a mounted share; C(require_mount=true) refuses a
        directory that is not a mount point), or C(type=rsync) with C(host), C(path), C(user), C(port), C(ssh_key),
        C(known_hosts), C(strict_host_key_checking), C(timeout).
      - Required when O(transfer=true).
    type: dict
  cnes:
    description:
      - CNES of the UBS, used in file names (default the first CNES of the lote's rows). In file mode a lote file
        holding a record of another unit is refused.
    type: str
  file_pattern:
    description:
      - File name of a lote; fields C({id}), C({cnes}), C({start}), C({end}).
      - The real PEC's export file name pattern is unknown.
    type: str
    default: lote-{cnes}-{id}.zip
  max_records_per_lote:
    description: At most this many rows per new lote; C(0) puts everything pending in one lote.
    type: int
    default: 0
  export:
    description: Create new lotes from the rows not yet in a lote.
    type: bool
    default: true
  transfer:
    description: Deliver and verify unconfirmed lotes at O(destination).
    type: bool
    default: true
  reverify_confirmed:
    description: Check the sha256 of confirmed lotes still at the destination; resend those found altered.
    type: bool
    default: true
  export_situations:
    description: C(tb_situacao_lote_transp) names of lotes the PEC has not sent, exported too.
    type: list
    elements: str
    default: [GERADO]
  situation_generated:
    description: Situation name of a new lote (unconfirmed for 4.5.2).
    type: str
    default: GERADO
  situation_sent:
    description: Situation name set once the lote is confirmed at the destination (unconfirmed for 4.5.2).
    type: str
    default: ENVIADO
  deadline_day:
    description: Day of the following month by which a month's CDS production must be in (technical note, SISAB).
    type: int
    default: 10
  today:
    description: Date (YYYY-MM-DD) the deadline is computed for; default today. For tests and reports of past months.
    type: str
  require_all_confirmed:
    description:
    - Fail the task when any lote is still not confirmed at the destination after the run (migration).
    - File mode - also when a record the database holds is in no delivered lote file and not observed at a node
      (the records gate, RV(gate)), or a file of O(files_dir) is invalid or was skipped (still being written).
    type: bool
    default: false
  db_timeout:
    description: Seconds allowed for each database statement.
    type: int
    default: 300
  facts_dir:
    description:
      - Where the run's state for the managers' report is recorded (C(sesdf_esus_lotes.fact), see
        M(sesdf.esus.pec_state)), that is lotes pending, invalid files, errors and the CDS
        deadline.
    type: path
    default: /etc/ansible/facts.d
"""

EXAMPLES = r"""
- name: Export and send the week's production to NCAIS's share
  sesdf.esus.pec_lotes:
    cnes: "{{ sesdf_esus_cnes }}"
    destination: {type: path, path: /mnt/ncais/lotes, require_mount: true}
  register: lotes

- name: Send the lote files saved from the PEC into the inbox, writing nothing in its tables
  sesdf.esus.pec_lotes:
    source: files
    cnes: "{{ sesdf_esus_cnes }}"
    destination: {type: path, path: /mnt/ncais/lotes, require_mount: true}

- name: Migration day - everything, and fail unless NCAIS has it all
  sesdf.esus.pec_lotes:
    destination:
      {type: rsync, host: ncais.example.invalid, user: lotes, path: /srv/lotes/ubs, ssh_key: /root/.ssh/ncais}
    require_all_confirmed: true
"""

RETURN = r"""
exported:
  description: Lotes created in the PEC by this run (always 0 in file mode).
  returned: always
  type: int
source:
  description: The mode that ran, V(db) or V(files) (what O(source=auto) chose).
  returned: success
  type: str
files:
  description:
    - File mode only - the inbox (C(dir), C(glob)), the names sent or to send this run (C(to_send)),
      the names already confirmed (C(already_sent)), the invalid files left in place (C(invalid), each C(file) and
      C(reason) in Portuguese) and the files skipped this run (C(skipped), C(file) and C(reason)).
  returned: when source is files
  type: dict
sent:
  description: Lote files copied to the destination by this run.
  returned: always
  type: int
confirmed:
  description: Lotes whose arrival was verified by this run.
  returned: always
  type: int
resent:
  description: Confirmed lotes found altered at the destination and sent again.
  returned: always
  type: int
pending:
  description: Lotes (file mode - lote files) not yet confirmed at the destination after this run (sent again next run).
  returned: always
  type: int
pending_records_before:
  description: Rows with no lote before the run (db mode).
  returned: when source is db
  type: int
gate:
  description:
    - File mode only - the records gate - C(observable) (the records could be read), C(why) (when not),
      C(db_records), C(delivered_in_files), C(at_node) (null - not observable), C(node_observable), C(node_note),
      C(missing) (records in no delivered file and not at a node), C(missing_sample) (up to 10 unique ids),
      C(missing_in_unconfirmed_files), C(ok).
  returned: when source is files
  type: dict
lotes:
  description:
    - Every lote in the ledger (id, file, records, sha256, period, confirmed, confirmed_at, last_error).
    - File mode - every lote file in the ledger (id and sha256 the file's sha256, file, names, dest_file, records
      the number of LEDI records, confirmed, confirmed_at, last_error).
  returned: always
  type: list
  elements: dict
errors:
  description: Problems of this run (lote, msg); the lotes concerned stay pending.
  returned: always
  type: list
  elements: dict
deadline:
  description: CDS deadline of the previous month (month, deadline, days_left, ok, units with status em_dia,
    enviado_com_atraso, pendente or atrasado). File mode - one unit, the UBS's CNES, from the records first seen
    that month (C(basis) says so); null when the records cannot be read.
  returned: always
  type: dict
summary:
  description:
    - "The migration contract's view: C(exported), C(sent), C(confirmed), C(pending) and C(lotes), a list of
      C(id), C(file), C(records), C(sha256), C(confirmed), and C(source); in file mode also C(pending_records) (the
      gate's missing records), C(gate) and C(invalid); the role sesdf.esus.lotes_export publishes it as
      C(lotes_export_result)."
  returned: always
  type: dict
compat:
  description:
    - The read-only schema probes (module_utils C(pec_compat)) of C(create_lotes) (when O(export)) and
      C(mark_lotes_sent), run before anything is written, check mode included. A capability whose schema does not
      match fails the task before any write, naming what is missing and the manual path
      (Transmissão de dados → Gerar novo lote → Salvar em arquivo).
    - With O(source=auto) choosing V(files), the two verdicts that made it choose; empty with O(source=files).
  returned: success
  type: dict
ledger:
  description: Path of the ledger.
  returned: always
  type: str
executed_queries:
  description: SQL statements run (row fetches omitted).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._paths import FACTS_DIR, LOTES_STATE_DIR
from ansible_collections.sesdf.esus.plugins.module_utils.lotes import (
    files_blockers,
    public_result,
    record_state,
    run_export,
)
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_files import DEFAULT_FILES_DIR, DEFAULT_FILES_GLOB
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_records import records_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import schema_trust_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_module import pec_database


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(schema_trust_argument_spec())
    argument_spec.update(
        source=dict(type="str", choices=["auto", "db", "files"], default="auto"),
        files_dir=dict(type="path", default=DEFAULT_FILES_DIR),
        files_glob=dict(type="str", default=DEFAULT_FILES_GLOB),
        files_settle_seconds=dict(type="int", default=120),
        state_dir=dict(type="path", default=LOTES_STATE_DIR),
        destination=dict(type="dict"),
        cnes=dict(type="str"),
        file_pattern=dict(type="str", default="lote-{cnes}-{id}.zip"),
        max_records_per_lote=dict(type="int", default=0),
        export=dict(type="bool", default=True),
        transfer=dict(type="bool", default=True),
        reverify_confirmed=dict(type="bool", default=True),
        export_situations=dict(type="list", elements="str", default=["GERADO"]),
        situation_generated=dict(type="str", default="GERADO"),
        situation_sent=dict(type="str", default="ENVIADO"),
        deadline_day=dict(type="int", default=10),
        today=dict(type="str"),
        require_all_confirmed=dict(type="bool", default=False),
        db_timeout=dict(type="int", default=300),
        facts_dir=dict(type="path", default=FACTS_DIR),
        **records_argument_spec(),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("transfer", True, ("destination",))],
    )
    params = module.params
    options = {k: params[k] for k in argument_spec if k not in pec_argument_spec()}
    with pec_database(module, timeout=params["db_timeout"]) as pec:
        result = run_export(pec.client, options, check_mode=module.check_mode)
    executed = pec.executed_queries
    try:
        if record_state(result, params["facts_dir"], check_mode=module.check_mode):
            result["changed"] = True
    except PecError as exc:
        module.fail_json(msg=f"the lotes were handled but their state could not be recorded: {exc.msg}", **result)
    result["summary"] = public_result(result)
    result["executed_queries"] = executed
    if params["require_all_confirmed"] and not module.check_mode and result["source"] == "files":
        blockers = files_blockers(result)
        if blockers:
            module.fail_json(msg="file mode: not every lote is at the destination: " + "; ".join(blockers), **result)
    if params["require_all_confirmed"] and not module.check_mode and (result["pending"] or result["errors"]):
        module.fail_json(
            msg=f"{result['pending']} lote(s) not confirmed at the destination: "
            + "; ".join(e["msg"] for e in result["errors"][:3])
            + ". They stay on the server; fix the destination and run again before going on",
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
