#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_manual_steps
short_description: Record the manual steps a PEC refused to the collection, and who confirmed them
version_added: 0.3.0
description:
  - Where this PEC refuses a write of the collection (module_utils C(pec_compat)), the step of the technical note is
    done by hand in the PEC's UI. Each refused capability O(refused) is recorded on the server as a manual step with
    an id (C(NT-apta-perfis) for C(change_profiles), C(NT-apta-transmissao) for C(transmission_off), C(NT-cnes-perfis)
    for C(cnes_profile_reset_off), C(NT-inapta-link) for C(installation_link), the rebuild's), what to do and the
    path in the PEC's UI, when it was asked and the status C(pendente).
  - O(confirmed) gives, per id, the name of the person who did it in the PEC; a pending step becomes C(confirmado)
    with C(confirmado_por) and C(confirmado_em). A confirmation never replaces an earlier one; a confirmation of a
    step already confirmed, or never asked on this server, is reported in RV(ignored) and not recorded.
  - Unknown ids, an empty name or a CPF-shaped name fail the task before anything is written.
  - The record is the C(manual_steps) concern of the server's state (C(<facts_dir>/sesdf_esus_manual_steps.fact),
    root-only, written atomically), read by M(sesdf.esus.pec_info) and the report. Without O(refused) and
    O(confirmed) the module only reads it.
  - Nothing in the PEC is read or written; a confirmed step stays "não verificável automaticamente".
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Reports what would be recorded; writes nothing.
  diff_mode:
    support: full
    details: The steps before and after.
options:
  refused:
    description:
      - Capabilities refused on this server in this run; each one not recorded yet becomes a pending step.
    type: list
    elements: str
    choices: [change_profiles, transmission_off, cnes_profile_reset_off, installation_link]
    default: []
  confirmed:
    description:
      - Step id to the name of the person who did it in the PEC's UI (the name only, never a CPF or login).
    type: dict
    default: {}
  paths:
    description:
      - Step id to the path in the PEC's UI recorded for a step asked now, replacing the default (the capability's
        manual path, from the PEC's manual and unconfirmed on a real server).
    type: dict
    default: {}
  facts_dir:
    description:
      - Directory of the server's state files.
    type: path
    default: /etc/ansible/facts.d
"""

EXAMPLES = r"""
- name: Record what this PEC refused, with the operator's confirmations
  sesdf.esus.pec_manual_steps:
    refused: [transmission_off]
    confirmed:
      NT-apta-transmissao: Maria Souza
  register: manual

- name: Read the manual steps of this server
  sesdf.esus.pec_manual_steps:
  check_mode: true
  register: manual
"""

RETURN = r"""
path:
  description: The record.
  returned: always
  type: str
  sample: /etc/ansible/facts.d/sesdf_esus_manual_steps.fact
steps:
  description: Every step recorded on this server, by id (after this run).
  returned: always
  type: dict
  sample:
    NT-apta-transmissao: {id: NT-apta-transmissao, capability: transmission_off, status: confirmado,
                          descricao: desligar a transmissão automática de lotes,
                          caminho: Transmissão de dados → Configurações → desativar o envio automático,
                          solicitado_em: "2026-12-01T20:00:00Z", confirmado_por: Maria Souza,
                          confirmado_em: "2026-12-02T20:00:00Z"}
pending:
  description: The steps still C(pendente), in id order.
  returned: always
  type: list
  elements: dict
confirmed_now:
  description: Ids confirmed by this run.
  returned: always
  type: list
  elements: str
ignored:
  description: Confirmations not recorded, and why.
  returned: always
  type: list
  elements: str
by_capability:
  description: The steps by capability, each with C(verificacao), what a check that cannot observe the PEC says.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._paths import FACTS_DIR
from ansible_collections.sesdf.esus.plugins.module_utils.manual_steps import BY_CAPABILITY, run
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            refused=dict(type="list", elements="str", choices=sorted(BY_CAPABILITY), default=[]),
            confirmed=dict(type="dict", default={}),
            paths=dict(type="dict", default={}),
            facts_dir=dict(type="path", default=FACTS_DIR),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module.params, check_mode=module.check_mode)
    except PecError as exc:
        module.fail_json(msg=exc.msg)
    for warning in result["ignored"]:
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
