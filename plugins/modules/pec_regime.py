#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_regime
short_description: Decide which flow of the technical note a UBS gets today
version_added: 0.3.0
description:
  - From the inventory (CTINF's group, the health region, the migration date, IT's target version and deadline,
    the maintenance window) and the state read from the server (pec_info's role and version consensus), returns
    the UBS's flow, V(migracao), V(aguardando_aprovacao), V(aguardando), V(local), V(consulta) or V(sem_pec),
    and IT's upgrade plan.
  - With O(migrate_enabled) or O(upgrade_enabled) false, a migration or an upgrade that is due is not done in this
    run but waits for an approval (RV(approvals)) - the apt UBS gets V(aguardando_aprovacao), the inapt one keeps
    V(local) with its upgrade not due.
  - Runs on the UBS so the maintenance window is the server's own wall-clock time.
  - Bad input (a UBS in both groups or in neither, an unknown or missing region, a date that is not AAAA-MM-DD, a
    target version without a deadline) fails this host with a message naming the host and the variable.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Reads nothing but its options and the clock; same result in check mode.
  diff_mode:
    support: none
options:
  host:
    description: The inventory name, for the messages.
    type: str
    required: true
  group_names:
    description: The host's inventory groups.
    type: list
    elements: str
    required: true
  regions:
    description: The health region groups.
    type: list
    elements: str
    default: [regiao_central, regiao_centro_sul, regiao_norte, regiao_sul, regiao_leste, regiao_oeste, regiao_sudoeste]
  pec_role:
    description: pec_info's role (local_server, consultation, none).
    type: str
    required: true
  version:
    description: pec_info's version consensus; empty when the sources disagree.
    type: str
    default: ""
  migration_date:
    description: C(sesdf_esus_data_migracao), AAAA-MM-DD, set by CTINF; empty when not set.
    type: str
    default: ""
  target_version:
    description: C(sesdf_esus_versao_alvo), IT's target version; empty for none.
    type: str
    default: ""
  upgrade_opens:
    description: C(sesdf_esus_atualizacao_inicio), the first day IT allows the upgrade; empty for at once.
    type: str
    default: ""
  upgrade_deadline:
    description: C(sesdf_esus_prazo_atualizacao), the day the UBS must be at the target version.
    type: str
    default: ""
  maintenance_window:
    description: C(sesdf_esus_janela_manutencao), HH:MM-HH:MM of the server's local time (may cross midnight).
    type: str
    default: "20:00-06:00"
  today:
    description: The calendar day to decide for (AAAA-MM-DD); empty for the server's today.
    type: str
    default: ""
  now:
    description: The wall-clock time to decide for (AAAA-MM-DDTHH:MM); empty for the server's now.
    type: str
    default: ""
  migrate_enabled:
    description: An apt UBS whose migration date came gets the migration flow; false, it waits for an approval.
    type: bool
    default: true
  upgrade_enabled:
    description: An inapt UBS whose upgrade is due (IT's window, maintenance hour) is upgraded; false, it waits.
    type: bool
    default: true
  migrate_approval:
    description: Where the approval of a migration is given (for example the AWX workflow), named in RV(approvals).
    type: str
    default: ""
  upgrade_approval:
    description: Where the approval of an upgrade is given, named in RV(approvals).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: The flow of this UBS
  sesdf.esus.pec_regime:
    host: "{{ inventory_hostname }}"
    group_names: "{{ group_names }}"
    pec_role: "{{ sesdf_esus_pec.role }}"
    version: "{{ sesdf_esus_pec.version.consensus | default('', true) }}"
    migration_date: "{{ sesdf_esus_data_migracao | default('') }}"
  register: regime
"""

RETURN = r"""
flow:
  description: migracao, aguardando_aprovacao, aguardando, local, consulta or sem_pec.
  returned: success
  type: str
reason:
  description: Why, in Portuguese.
  returned: success
  type: str
region:
  description: The host's health region group.
  returned: success
  type: str
group:
  description: CTINF's group (ubs_aptas, ubs_inaptas) or null.
  returned: success
  type: str
migration:
  description: date (or null) and due.
  returned: success
  type: dict
upgrade:
  description: >-
    target, version, deadline, opens, below_target, days_left (negative when overdue), window_open,
    maintenance_hour, due, reason.
  returned: success
  type: dict
approvals:
  description: >-
    The flows due but not done in this run (a switch false), each with flow (migracao, atualizacao), reason,
    approve (where the approval is given) and msg (Portuguese, for the report); empty otherwise.
  returned: success
  type: list
  elements: dict
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.regime import REGIONS, decide


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            group_names=dict(type="list", elements="str", required=True),
            regions=dict(type="list", elements="str", default=list(REGIONS)),
            pec_role=dict(type="str", required=True),
            version=dict(type="str", default=""),
            migration_date=dict(type="str", default=""),
            target_version=dict(type="str", default=""),
            upgrade_opens=dict(type="str", default=""),
            upgrade_deadline=dict(type="str", default=""),
            maintenance_window=dict(type="str", default="20:00-06:00"),
            today=dict(type="str", default=""),
            now=dict(type="str", default=""),
            migrate_enabled=dict(type="bool", default=True),
            upgrade_enabled=dict(type="bool", default=True),
            migrate_approval=dict(type="str", default=""),
            upgrade_approval=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        now = datetime.datetime.fromisoformat(params["now"]) if params["now"] else None
        today = datetime.date.fromisoformat(params["today"]) if params["today"] else None
    except ValueError as exc:
        module.fail_json(msg=f"{params['host']}: today/now: {exc}")
    try:
        result = decide(params, today=today, now=now)
    except PecError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
