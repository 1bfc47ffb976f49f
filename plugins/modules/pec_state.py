#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_state
short_description: Record a result a manager needs on the UBS server
version_added: 0.2.0
description:
  - Writes one concern's result (hardening, maintenance, profiles, lotes, upgrade, readiness, the backup host's
    borg retention, ...) as
    C(<facts_dir>/sesdf_esus_<concern>.fact), root-only, atomically, with the date it was produced, so that
    M(sesdf.esus.pec_info) reads every concern from one place and a report never depends on what else ran in the
    same play.
  - The file holds C(produced_at) (when O(data) last changed) and C(confirmed_at) (when a run last found the same
    result). The same O(data) again rewrites the file only when C(confirmed_at) is older than O(refresh_hours), so a
    second run within that time changes nothing.
  - With O(history), O(data) becomes C(last) and the previous distinct results are kept in C(history).
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Reports whether the file would be written; writes nothing.
  diff_mode:
    support: full
    details: The recorded document before and after.
options:
  concern:
    description:
      - What the result is about; the file name is derived from it.
    type: str
    required: true
    choices: [cnes, hardening, maintenance, profiles, central_profiles, lotes, upgrade, readiness, borg_retention]
  data:
    description:
      - The result, as a JSON-serializable dictionary. Put in it only what the report needs; the file is
        root-only, but keep patient data out of it.
    type: dict
    required: true
  facts_dir:
    description:
      - Directory of the local facts where the state files are kept (created, 0755, when missing).
    type: path
    default: /etc/ansible/facts.d
  refresh_hours:
    description:
      - An unchanged result rewrites the file (new C(confirmed_at)) only when the last confirmation is older than this.
    type: float
    default: 1.0
  history:
    description:
      - Keep this many results (the last one included) in C(data.history); C(0) keeps only this one, as given.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Record the hardening result for the managers' report
  sesdf.esus.pec_state:
    concern: hardening
    data:
      mode: audit
      summary: "{{ hardening_report.summary }}"
      failed: "{{ hardening_report.controls | selectattr('status', 'eq', 'fail') | map(attribute='id') | list }}"

- name: Keep the last ten upgrade results
  sesdf.esus.pec_state:
    concern: upgrade
    data: "{{ upgrade_summary }}"
    history: 10
"""

RETURN = r"""
path:
  description: The state file.
  returned: always
  type: str
  sample: /etc/ansible/facts.d/sesdf_esus_hardening.fact
state:
  description: The document recorded (or that would be, in check mode).
  returned: always
  type: dict
  sample: {concern: hardening, produced_at: "2026-12-01T02:00:00Z", confirmed_at: "2026-12-01T02:00:00Z",
           data: {mode: audit, summary: {pass: 40, fail: 1}}}
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._paths import FACTS_DIR
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import state_path, write_state

WRITABLE = [
    "cnes",
    "hardening",
    "maintenance",
    "profiles",
    "central_profiles",
    "lotes",
    "upgrade",
    "readiness",
    "borg_retention",
]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            concern=dict(type="str", required=True, choices=WRITABLE),
            data=dict(type="dict", required=True),
            facts_dir=dict(type="path", default=FACTS_DIR),
            refresh_hours=dict(type="float", default=1.0),
            history=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = state_path(p["facts_dir"], p["concern"])
    # Round-trip through JSON: what is compared is what the file holds (Ansible's types become plain ones).
    data = json.loads(json.dumps(p["data"], sort_keys=True, default=str))
    try:
        changed, before, after = write_state(
            p["facts_dir"],
            p["concern"],
            data,
            refresh_hours=p["refresh_hours"],
            history=p["history"],
            check_mode=module.check_mode,
        )
    except PecError as exc:
        module.fail_json(msg=exc.msg, path=path)
    result = {"changed": changed, "path": path, "state": after}
    if module._diff:
        result["diff"] = {"before": before or {}, "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
