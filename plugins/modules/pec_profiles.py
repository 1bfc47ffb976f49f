#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_profiles
short_description: Put every professional of a PEC e-SUS server in a single view-only profile
version_added: 0.2.0
description:
  - For a UBS migrated to the central server (consultation mode, technical note 6/2022, GPMA's duty).
  - Creates, when missing, a view-only profile (O(profile_name), C(tb_perfil)) whose only grants
    (C(tb_perfil_recurso)) are O(profile_operations) on O(profile_resources); an existing profile of that name
    is brought to exactly those grants and activated.
  - Sets every lotação (C(tb_lotacao)) to that single profile, removing every other profile assignment
    (C(rl_ator_papel_perfil)).
  - Administrators too. Their administrator roles (rows of C(tb_adm_geral) and C(tb_adm_municipal)) and the
    profiles of their administrator papéis are removed, except for every papel of the break-glass account
    O(break_glass_login), which is left exactly as it is.
  - Before changing anything, writes a JSON snapshot of every assignment and administrator role it removes
    (with the SQL to put them back) under O(snapshot_dir), root-only. A snapshot of a run whose transaction
    failed is renamed C(*.aborted.json).
  - All changes happen in one transaction, which first locks the tables and checks that nothing changed since
    they were read; otherwise it rolls back and the task fails asking for a rerun.
  - The schema names (tables, C(tp_perfil) values, C(tb_recurso) names, C(tp_operacao) values) are those seen on
    PEC 5.x and modelled by the collection's test double; unconfirmed for 4.5.2, hence the options.
  - Writes only where the schema profile C(change_profiles) of module_utils C(pec_compat) matches, which describes
    the double's 4.x schema only. On a 5.x schema (C(no_tipo_ator_papel), C(tb_perfil.type) and C(situation),
    resource names in C(tb_perfil_recurso), no C(tb_recurso)) the change is always refused, see O(unsupported).
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
    details: Reads the database and reports what would change; writes neither the snapshot nor the database.
  diff_mode:
    support: full
    details: Per professional (login and name), the profiles of each papel before and after.
options:
  profile_name:
    description:
      - Name of the view-only profile.
    type: str
    default: Visualização de prontuário
  profile_type:
    description:
      - C(tb_perfil.tp_perfil) of the view-only profile (unconfirmed for 4.5.2).
    type: str
    default: LOTACAO
  profile_resources:
    description:
      - C(tb_recurso.no_recurso) names the profile may use (the defaults are the test double's names;
        unconfirmed for 4.5.2). A name missing from C(tb_recurso) fails the task before any change.
    type: list
    elements: str
    default: [PRONTUARIO, CIDADAO]
  profile_operations:
    description:
      - C(tb_perfil_recurso.tp_operacao) values granted on each resource (unconfirmed for 4.5.2).
      - Keep it to viewing; the point of the profile is that nothing can be edited.
    type: list
    elements: str
    default: [VISUALIZAR]
  break_glass_login:
    description:
      - C(tb_usuario.ds_login) (CPF) of the one account kept as it is, so the server can still be administered.
      - Must exist and hold an administrator role, or the task fails before any change.
      - When not set, every administrator role is removed (a warning says so).
      - A CPF, so personal data - it is never shown in the module's logged arguments or output (C(no_log)).
    type: str
  snapshot_dir:
    description:
      - Directory (created 0700) for the JSON snapshots of what was removed.
    type: path
    default: /var/lib/sesdf-esus/profile-snapshots
  unsupported:
    description:
      - What a refused capability C(change_profiles) does (this PEC's permission tables are not the known ones).
        V(fail) fails the task before any write; V(skip) changes nothing, warns with the manual path and returns
        RV(supported)=false (only RV(supported), RV(compat) and RV(executed_queries)), so a flow can record the
        step to be done by hand (M(sesdf.esus.pec_manual_steps)) and a check can say it is not verifiable.
    type: str
    choices: [fail, skip]
    default: fail
"""

EXAMPLES = r"""
- name: Consultation mode - everyone view-only, the break-glass administrator kept
  sesdf.esus.pec_profiles:
    break_glass_login: "00000000272"
  register: profiles
  diff: true

- name: Preview without changing anything
  sesdf.esus.pec_profiles:
    break_glass_login: "00000000272"
  check_mode: true
  diff: true
"""

RETURN = r"""
supported:
  description: Whether this PEC's schema lets the collection change the profiles; false means nothing was read for
    writing nor changed (O(unsupported=skip)).
  returned: success
  type: bool
profile:
  description: The view-only profile.
  returned: when supported
  type: dict
  sample:
    {id: 27, name: Visualização de prontuário, created: true,
     grants: [[CIDADAO, VISUALIZAR], [PRONTUARIO, VISUALIZAR]]}
professionals_view_only:
  description: Professionals (break-glass excluded) whose lotações all have only the view-only profile after the run.
  returned: when supported
  type: int
  sample: 8
lotacoes_view_only:
  description: Lotações (break-glass excluded) with only the view-only profile after the run.
  returned: when supported
  type: int
  sample: 9
changed_professionals:
  description:
    - Professionals whose profiles or administrator roles changed (or would change), as C(profissional <id>) (the
      PEC's C(tb_prof) id); never a login (a CPF) or a name. The root-only snapshot keeps both for the rollback.
  returned: when supported
  type: list
  elements: str
removed_assignments:
  description: Profile assignments removed (or to be removed in check mode).
  returned: when supported
  type: int
added_assignments:
  description: View-only assignments added.
  returned: when supported
  type: int
admin_roles_removed:
  description: Rows removed from C(tb_adm_geral) and C(tb_adm_municipal).
  returned: when supported
  type: int
break_glass:
  description: The ids of the papéis of the account kept (never its login, a CPF).
  returned: when supported
  type: dict
  sample: {papeis_kept: [14]}
snapshot:
  description: Path of the JSON snapshot of what was removed, or null when nothing changed or in check mode.
  returned: when supported
  type: str
  sample: /var/lib/sesdf-esus/profile-snapshots/pec_profiles-20260101T120000123456Z.json
compat:
  description:
    - The read-only schema probe of capability C(change_profiles) (module_utils C(pec_compat)), run before anything
      else, check mode included. When the live schema does not match, the task fails before any write with what is
      missing and the manual path, or with O(unsupported=skip) returns it with RV(supported)=false.
  returned: success
  type: dict
  sample: {capability: change_profiles, supported: true, version: 4.2.8, missing: []}
executed_queries:
  description: SQL run against the database.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._paths import PROFILE_SNAPSHOTS_DIR
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import schema_trust_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_module import pec_database
from ansible_collections.sesdf.esus.plugins.module_utils.pec_profiles import (
    DEFAULT_OPERATIONS,
    DEFAULT_PROFILE_NAME,
    DEFAULT_PROFILE_TYPE,
    DEFAULT_RESOURCES,
    run,
)


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(schema_trust_argument_spec())
    argument_spec.update(
        profile_name=dict(type="str", default=DEFAULT_PROFILE_NAME),
        profile_type=dict(type="str", default=DEFAULT_PROFILE_TYPE),
        profile_resources=dict(type="list", elements="str", default=list(DEFAULT_RESOURCES)),
        profile_operations=dict(type="list", elements="str", default=list(DEFAULT_OPERATIONS)),
        # a CPF: personal data, kept out of the logged invocation and of any output that repeats it
        break_glass_login=dict(type="str", no_log=True),
        snapshot_dir=dict(type="path", default=PROFILE_SNAPSHOTS_DIR),
        unsupported=dict(type="str", choices=["fail", "skip"], default="fail"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    with pec_database(module, timeout=120) as pec:
        result = run(pec.client, pec.conn, module.params, module.check_mode)
    executed = pec.executed_queries
    if not result["supported"]:
        module.warn(result["compat"]["reason"])
        module.exit_json(executed_queries=executed, **result)
    if not module.params.get("break_glass_login") and result["admin_roles_removed"]:
        module.warn("no break_glass_login: every administrator role is removed; nobody can administer this PEC")
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(executed_queries=executed, **result)


if __name__ == "__main__":
    main()
