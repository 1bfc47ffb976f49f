#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_config
short_description: Set system settings (tb_config_sistema) of a PEC e-SUS APS database
version_added: 0.2.0
description:
  - Sets keys of C(tb_config_sistema) to the given text values, in one transaction.
  - Used by the decommission role to turn off the automatic transmission of a server in consultation mode.
  - Keys absent from the table are reported in RV(missing) and left absent unless O(create_missing); where the PEC
    keeps a setting is unconfirmed for 4.5.2 (the keys the collection uses by default are the test double's).
  - The PEC application may cache settings; restart it for a change to take effect.
  - Before anything is read for writing, the live schema is probed read-only (module_utils C(pec_compat)), the
    table C(tb_config_sistema) and, with O(capability), the keys that capability needs. A capability that does not
    match is refused before any write, with what is missing and the manual path in the PEC's UI (RV(compat)).
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
    details: Reads the current values and reports what would change.
  diff_mode:
    support: full
    details: Values before and after, per key.
options:
  settings:
    description:
      - Key to text value. Values are compared as text (V(false), not V(False)).
    type: dict
    required: true
  create_missing:
    description:
      - Insert keys that are not in the table.
    type: bool
    default: false
  capability:
    description:
      - The PEC capability these settings implement; its schema profile (keys of C(tb_config_sistema) included) is
        probed before any write. Without it only the table and its columns are probed.
    type: str
    choices: [transmission_off, cnes_profile_reset_off]
  unsupported:
    description:
      - What a refused capability does. V(fail) fails the task; V(skip) changes nothing, warns with the manual path
        and returns RV(supported)=false, so a flow can go on and report the step as still to be done by hand.
    type: str
    choices: [fail, skip]
    default: fail
"""

EXAMPLES = r"""
- name: Automatic transmission off
  sesdf.esus.pec_config:
    settings:
      TRANSMISSAO_AUTOMATICA: "false"
    capability: transmission_off
    unsupported: skip
"""

RETURN = r"""
before:
  description: Values before, per key found.
  returned: always
  type: dict
after:
  description: Values after (or that would be after, in check mode).
  returned: always
  type: dict
missing:
  description: Keys not found in tb_config_sistema and not created.
  returned: always
  type: list
  elements: str
supported:
  description: Whether the schema probe found what the settings need; false means nothing was written.
  returned: always
  type: bool
compat:
  description: The probe's verdict (capability, supported, version, profile, missing, manual, reason).
  returned: always
  type: dict
executed_queries:
  description: SQL run against the database.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import Probe, schema_trust_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_migration import set_config
from ansible_collections.sesdf.esus.plugins.module_utils.pec_module import pec_database


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(schema_trust_argument_spec())
    argument_spec.update(
        settings=dict(type="dict", required=True),
        create_missing=dict(type="bool", default=False),
        capability=dict(type="str", choices=["transmission_off", "cnes_profile_reset_off"]),
        unsupported=dict(type="str", choices=["fail", "skip"], default="fail"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    values = {str(k): (None if v is None else str(v)) for k, v in module.params["settings"].items()}
    params = module.params
    with pec_database(module) as pec:
        probe = Probe(pec.client, trust=params["schema_trust"], surveyed=params["capability_profiles"])
        keys = list(values) if params["capability"] and not params["create_missing"] else ()
        verdict = probe.check(params["capability"] or "config_table", keys)
        if verdict["supported"]:
            result = set_config(pec.client, values, module.check_mode, params["create_missing"])
    executed = pec.executed_queries
    if not verdict["supported"]:
        if params["unsupported"] == "fail":
            module.fail_json(msg=verdict["reason"], supported=False, compat=verdict, executed_queries=executed)
        module.warn(verdict["reason"])
        module.exit_json(
            changed=False, supported=False, compat=verdict, before={}, after={}, missing=[], executed_queries=executed
        )
    if result["missing"]:
        module.warn(f"tb_config_sistema has no key {', '.join(result['missing'])}: nothing set for it")
    out = dict(result, supported=True, compat=verdict, executed_queries=executed)
    if module._diff:
        out["diff"] = {"before": result["before"], "after": result["after"]}
    module.exit_json(**out)


if __name__ == "__main__":
    main()
