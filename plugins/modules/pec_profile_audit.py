#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_profile_audit
short_description: Compare the PEC's lotações and profiles with the CNES XML
version_added: 0.1.0
description:
  - For every lotação in the PEC (C(tb_lotacao)), checks that the CNES XML places the professional (by CPF) in the
    same unit CNES with the same CBO, and that each of its profiles is a default profile of that CBO
    (C(rl_perfil_cbo_padrao)) or one of O(extra_allowed_profiles).
  - Returns the mismatches as data (machine-readable), one entry per problem, with C(tipo) one of
    C(profissional_ausente_do_cnes), C(lotacao_em_outro_cnes), C(cbo_divergente), C(perfil_nao_permitido_para_cbo).
  - Changes nothing in the PEC. Schema names are those of pec-facts.md (unconfirmed for 4.5.2).
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
  cnes_file:
    description: The CNES file (C(.xml) or C(.zip)) on the managed host.
    type: path
    required: true
  cnes:
    description: CNES of the UBS.
    type: str
    required: true
  extra_allowed_profiles:
    description: Profile names allowed on any lotação besides the CBO's defaults (e.g. a custom view-only profile).
    type: list
    elements: str
    default: []
  include_inactive:
    description: Also audit inactive lotações (C(st_ativo = false)).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Audit profiles against the week's CNES file
  sesdf.esus.pec_profile_audit:
    cnes_file: /var/lib/sesdf-esus/cnes/atual.xml
    cnes: "{{ sesdf_esus_cnes }}"
  register: audit
"""

RETURN = r"""
audit:
  description: The result for this UBS.
  returned: success
  type: dict
  contains:
    cnes:
      description: CNES of the UBS.
      type: str
    cnes_file_sha256:
      description: sha256 of the CNES file used.
      type: str
    lotacoes:
      description: Number of lotações audited.
      type: int
    mismatches:
      description: One entry per problem (tipo, cpf, nome, cnes, cbo, ator_papel, perfil, detalhe).
      type: list
      elements: dict
    counts:
      description: Number of mismatches per C(tipo).
      type: dict
executed_queries:
  description: SQL run (read-only).
  returned: always
  type: list
  elements: str
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.cnes import AUDIT_SQL, audit_profiles, read_cnes_file
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_module import pec_database


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        cnes_file=dict(type="path", required=True),
        cnes=dict(type="str", required=True),
        extra_allowed_profiles=dict(type="list", elements="str", default=[]),
        include_inactive=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        data = read_cnes_file(params["cnes_file"], params["cnes"])
    except PecError as exc:
        module.fail_json(msg=exc.msg, executed_queries=[], **exc.details)
    with pec_database(module) as pec:
        rows = [json.loads(r[0]) for r in pec.client.query(AUDIT_SQL)]
        mismatches = audit_profiles(data, rows, params["extra_allowed_profiles"], params["include_inactive"])
    executed = pec.executed_queries
    counts = {}
    for item in mismatches:
        counts[item["tipo"]] = counts.get(item["tipo"], 0) + 1
    audit = {
        "cnes": params["cnes"],
        "cnes_file_sha256": data["sha256"],
        "lotacoes": len(rows),
        "mismatches": mismatches,
        "counts": counts,
    }
    module.exit_json(changed=False, audit=audit, executed_queries=executed)


if __name__ == "__main__":
    main()
