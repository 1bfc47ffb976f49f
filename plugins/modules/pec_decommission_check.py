#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_decommission_check
short_description: Check that a PEC e-SUS server may be put in consultation mode
version_added: 0.2.0
description:
  - Read-only gates before the decommission of a UBS migrated to the central server.
  - With O(lotes_source=files) (the real PEC's model; the lotes export in file mode writes nothing in the PEC's
    tables) every record the database holds (O(records_uuid_column)) must be in a lote file confirmed at the
    destination, or at a destination node where O(node_query) lets the collection observe it; the records
    missing are counted and named (their unique ids, no personal data). Records that cannot be read, a lote file in
    the inbox O(lotes_files_dir) not yet delivered, invalid (its LEDI content) or still being written, block.
  - With O(lotes_source=db) (the old model of the full test double - C(tb_situacao_lote_transp), which real servers
    do not have) production not yet in a lote and lotes generated but not sent (situation not O(situation_sent))
    block.
  - Lotes of the collection's export ledger (O(lotes_ledger)) not confirmed at the destination block.
  - No verified backup in the backup status fact (O(backup_fact)), its archive missing or different on disk,
    older than O(backup_max_age_hours), or older than the last change (newest lote created in the database,
    newest ledger entry, the PEC's installer config O(pec_config_path) i.e. the last upgrade) blocks.
  - With O(fail_on_problems) the task fails listing every problem; otherwise they are returned.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - sesdf.esus.lotes_records
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
options:
  backup_fact:
    description:
      - Status fact file written by the backup role and job.
    type: path
    default: /etc/ansible/facts.d/sesdf_esus_backup.fact
  backup_max_age_hours:
    description:
      - Maximum age of the verified backup; V(0) for no limit.
    type: int
    default: 24
  lotes_ledger:
    description:
      - Ledger of the lotes export (sesdf.esus.lotes_export). Absent means nothing was exported by the collection.
    type: path
    default: /var/lib/sesdf-esus/lotes/ledger.json
  situation_sent:
    description:
      - O(lotes_source=db) only - C(tb_situacao_lote_transp.no_situacao) of a sent lote (the full double's table).
    type: str
    default: ENVIADO
  lotes_source:
    description:
      - How the lotes were exported (the C(source) the lotes export reported) - V(db) (the collection created them
        and marked them sent in the PEC's tables, old model) or V(files) (the lote files the operator saved from
        the PEC into the inbox, and the records per node - the real model).
    type: str
    choices: [db, files]
    default: db
  lotes_files_dir:
    description:
      - File mode - the inbox where the operator drops the lote files the PEC's "Salvar em arquivo" gave the browser.
    type: path
    default: /var/lib/sesdf-esus/lotes/entrada
  lotes_files_glob:
    description:
      - File mode - the names of the lote files in O(lotes_files_dir) (the PEC's C(RAS_Lote<N>_<date>--<time>.zip)).
    type: str
    default: "RAS_Lote*.zip"
  cnes:
    description:
      - File mode - the UBS's CNES; a lote file with a record of another unit is invalid.
    type: str
    default: ""
  fail_on_problems:
    description:
      - Fail the task when any gate is not met.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Refuse to decommission while lotes or the backup are missing
  sesdf.esus.pec_decommission_check:
    lotes_ledger: /var/lib/sesdf-esus/lotes/ledger.json
"""

RETURN = r"""
ok:
  description: Whether every gate is met.
  returned: always
  type: bool
problems:
  description: Each gate not met, with what to do.
  returned: always
  type: list
  elements: str
warnings:
  description:
    - File mode - the inbox's own state when the records gate decides (files invalid, still being written or not
      delivered), with what to do; they do not block (also shown as Ansible warnings).
  returned: success
  type: list
  elements: str
database:
  description:
    - C(last_change) (UTC) of the transmission tables; with O(lotes_source=db) also C(pending_records) and
      C(unsent_lotes).
  returned: success
  type: dict
ledger:
  description: Lotes in the ledger, confirmed count, unconfirmed ids, newest change.
  returned: success
  type: dict
files:
  description:
    - File mode only (null otherwise) - the inbox (C(dir)), valid lote files found (C(files)),
      C(confirmed), C(unconfirmed) names, C(invalid) (C(file), C(reason)), C(skipped), C(problems) and C(records),
      the records gate (C(observable), C(db_records), C(delivered_in_files), C(at_node), C(node_observable),
      C(node_note), C(missing), C(missing_sample) (unique ids), C(missing_in_unconfirmed_files), C(ok)).
  returned: success
  type: dict
backup:
  description: The verified backup (path, file, sha256, size_bytes, created_at, age_hours, on_disk, offhost).
  returned: success
  type: dict
last_changes:
  description: The change times the backup must be newer than.
  returned: success
  type: dict
executed_queries:
  description: SQL run (read-only).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._paths import BACKUP_FACT, LOTES_LEDGER
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_files import DEFAULT_FILES_DIR, DEFAULT_FILES_GLOB
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_records import records_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_migration import preflight
from ansible_collections.sesdf.esus.plugins.module_utils.pec_module import pec_database


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        backup_fact=dict(type="path", default=BACKUP_FACT),
        backup_max_age_hours=dict(type="int", default=24),
        lotes_ledger=dict(type="path", default=LOTES_LEDGER),
        situation_sent=dict(type="str", default="ENVIADO"),
        lotes_source=dict(type="str", choices=["db", "files"], default="db"),
        lotes_files_dir=dict(type="path", default=DEFAULT_FILES_DIR),
        lotes_files_glob=dict(type="str", default=DEFAULT_FILES_GLOB),
        cnes=dict(type="str", default=""),
        **records_argument_spec(),
        fail_on_problems=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    with pec_database(module, failure=lambda exc: {"ok": False, "problems": [exc.msg]}) as pec:
        result = preflight(pec.client, module.params)
    executed = pec.executed_queries
    for warning in result.get("warnings", []):
        module.warn(warning)
    if result["problems"] and module.params["fail_on_problems"]:
        module.fail_json(
            msg="not ready for consultation mode: " + " | ".join(result["problems"]),
            executed_queries=executed,
            **result,
        )
    module.exit_json(changed=False, executed_queries=executed, **result)


if __name__ == "__main__":
    main()
