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
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the current values and reports what would change.
  diff_mode:
    support: full
    details: Values before and after, per key.
  platform:
    support: full
    platforms: posix
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
"""

EXAMPLES = r"""
- name: Automatic transmission off
  sesdf.esus.pec_config:
    settings:
      TRANSMISSAO_AUTOMATICA: "false"
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
executed_queries:
  description: SQL run against the database.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_migration import set_config
from ansible_collections.sesdf.esus.plugins.module_utils.pec_module import pec_database


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        settings=dict(type="dict", required=True),
        create_missing=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    values = {str(k): (None if v is None else str(v)) for k, v in module.params["settings"].items()}
    with pec_database(module) as pec:
        result = set_config(pec.client, values, module.check_mode, module.params["create_missing"])
    executed = pec.executed_queries
    if result["missing"]:
        module.warn(f"tb_config_sistema has no key {', '.join(result['missing'])}: nothing set for it")
    out = dict(result, executed_queries=executed)
    if module._diff:
        out["diff"] = {"before": result["before"], "after": result["after"]}
    module.exit_json(**out)


if __name__ == "__main__":
    main()
