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
    C(profissional_ausente_do_cnes), C(lotacao_em_outro_cnes), C(cbo_divergente), C(perfil_nao_permitido_para_cbo)
    and, with O(scope=central), C(profissional_sem_lotacao_no_central).
  - With O(scope=central) the database is the central server's (many units); only the lotações of unit O(cnes) are
    audited, and every professional the CNES XML places in that unit must have an active lotação there with that CBO
    (the central server's side of a migrated UBS).
  - Changes nothing in the PEC. It reads the PEC test double's 4.x column names or those seen on a real 5.5
    (C(tb_prof.no_civil_profissional), C(tb_perfil.type), integer C(st_ativo)), whichever the live schema has
    (module_utils C(pec_schema)); a schema with neither fails naming the missing column ("não verificável") before
    any row is read. Unconfirmed for 4.5.2.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
options:
  cnes_file:
    description:
      - The CNES file (C(.xml) or C(.zip)) on the managed host. One of O(cnes_file) and O(cnes_content) is required.
    type: path
  cnes_content:
    description:
      - The CNES file's bytes, base64-encoded (what M(ansible.builtin.slurp) returns), for a file that is on another
        host (the migrated UBS's file, audited on the central server). Never logged (it holds the professionals' CPF).
    type: str
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
    description: Also audit inactive lotações (C(tb_lotacao.st_ativo) false, or 0 on 5.x).
    type: bool
    default: false
  scope:
    description:
      - C(local) audits every lotação of the UBS's own PEC; C(central) audits the lotações of unit O(cnes) on the
        central server and lists the professionals of that unit it lacks.
      - For C(central), connect with the central server's read-only database user (O(db_user), O(db_password)).
    type: str
    choices: [local, central]
    default: local
"""

EXAMPLES = r"""
- name: Audit profiles against the week's CNES file
  sesdf.esus.pec_profile_audit:
    cnes_file: /var/lib/sesdf-esus/cnes/atual.xml
    cnes: "{{ sesdf_esus_cnes }}"
  register: audit

- name: The central server's side of a migrated UBS, with its read-only user
  sesdf.esus.pec_profile_audit:
    scope: central
    cnes_content: "{{ cnes_file_of_the_ubs.content }}"  # slurped from the migrated UBS
    cnes: "0030001"
    db_user: leitura
    db_password: "{{ vault_central_db_password }}"
  delegate_to: servidor-central
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
      description: Number of lotações audited (with O(scope=central), those of unit O(cnes)).
      type: int
    scope:
      description: The scope audited, O(scope).
      type: str
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.cnes_xml import cnes_from_base64, read_cnes_file
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_module import pec_database
from ansible_collections.sesdf.esus.plugins.module_utils.profile_audit import (
    audit_profiles,
    central_audit,
    read_lotacoes,
)


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        cnes_file=dict(type="path"),
        cnes_content=dict(type="str", no_log=True),
        cnes=dict(type="str", required=True),
        extra_allowed_profiles=dict(type="list", elements="str", default=[]),
        include_inactive=dict(type="bool", default=False),
        scope=dict(type="str", choices=["local", "central"], default="local"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[("cnes_file", "cnes_content")],
        mutually_exclusive=[("cnes_file", "cnes_content")],
    )
    params = module.params
    try:
        if params["cnes_content"] is not None:
            data = cnes_from_base64(params["cnes_content"], params["cnes"])
        else:
            data = read_cnes_file(params["cnes_file"], params["cnes"])
    except PecError as exc:
        module.fail_json(msg=exc.msg, executed_queries=[], **exc.details)
    with pec_database(module) as pec:
        rows = read_lotacoes(pec.client)
        if params["scope"] == "central":
            mismatches = central_audit(
                data, rows, params["cnes"], params["extra_allowed_profiles"], params["include_inactive"]
            )
        else:
            mismatches = audit_profiles(data, rows, params["extra_allowed_profiles"], params["include_inactive"])
    executed = pec.executed_queries
    counts = {}
    for item in mismatches:
        counts[item["tipo"]] = counts.get(item["tipo"], 0) + 1
    audit = {
        "cnes": params["cnes"],
        "cnes_file_sha256": data["sha256"],
        "lotacoes": len(rows)
        if params["scope"] == "local"
        else sum(1 for r in rows if r.get("cnes") == params["cnes"]),
        "scope": params["scope"],
        "mismatches": mismatches,
        "counts": counts,
    }
    module.exit_json(changed=False, audit=audit, executed_queries=executed)


if __name__ == "__main__":
    main()
