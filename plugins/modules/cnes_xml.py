#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cnes_xml
short_description: Read and validate the weekly CNES XML for one UBS
version_added: 0.1.0
description:
  - Reads a CNES file as NCAIS distributes it, a C(.xml) or the e-Gestor C(XmlParaESUS*.zip) holding one C(.xml).
  - Validates its structure (root C(ImportarXMLCNES), C(IDENTIFICACAO) with C(ESTABELECIMENTOS) and C(PROFISSIONAIS)),
    checks that the UBS's CNES is one of its establishments, and returns the unit, its teams and its professionals.
  - Fails with a message that says what to do when the file is empty, not XML, another root, or another unit's file.
  - Refuses DOCTYPE declarations, entity declarations and external entities (the protections of defusedxml),
    with the Python standard library only.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
options:
  path:
    description: The CNES file on the managed host (C(.xml) or C(.zip)).
    type: path
    required: true
  cnes:
    description: CNES (7 digits) of the UBS this server belongs to.
    type: str
    required: true
  pec_version:
    description:
      - Version of the PEC that will import the file. When given, the file's layout (C(VERSAO_XSD)) must be one this
        PEC reads (O(layout_min_pec)) and not lower than O(last_xsd_version); otherwise the task fails saying what to
        ask NCAIS for.
    type: str
  last_xsd_version:
    description: Layout of the last CNES file this PEC imported (a PEC refuses a lower one).
    type: str
  layout_min_pec:
    description:
      - The first PEC version that reads each CNES layout; layout 2.x is read by every version.
      - "Default from docs/pec-facts.md - C({'3.0': '5.0', '3.1': '5.2'})."
    type: dict
"""

EXAMPLES = r"""
- name: Validate the week's CNES file
  sesdf.esus.cnes_xml:
    path: /var/lib/sesdf-esus/cnes/XmlParaESUS31_530010.zip
    cnes: "{{ sesdf_esus_cnes }}"
  register: cnes
"""

RETURN = r"""
cnes:
  description: What the file holds for this UBS.
  returned: success
  type: dict
  contains:
    sha256:
      description: sha256 of the file as read (zip or xml).
      type: str
    ibge:
      description: C(CO_IBGE_MUN) of the file.
      type: str
      sample: "530010"
    xsd_version:
      description: C(VERSAO_XSD) of the file.
      type: str
      sample: "2.1"
    units:
      description: Number of establishments in the file.
      type: int
    unit:
      description: The UBS (cnes, name, type, teams with ine, name, type, area).
      type: dict
    professionals:
      description: One entry per lotação of a professional in this UBS (cpf, cns, name, cbo, ine, team).
      type: list
      elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.cnes_xml import layout_verdict, read_cnes_file
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            cnes=dict(type="str", required=True),
            pec_version=dict(type="str"),
            last_xsd_version=dict(type="str"),
            layout_min_pec=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    try:
        data = read_cnes_file(module.params["path"], module.params["cnes"])
    except PecError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    data.pop("all_professionals", None)
    params = module.params
    if params["pec_version"]:
        reason = layout_verdict(
            data["xsd_version"], params["pec_version"], params["last_xsd_version"], params["layout_min_pec"]
        )
        if reason:
            module.fail_json(msg=f"{params['path']}: {reason}", cnes=data)
    module.exit_json(changed=False, cnes=data)


if __name__ == "__main__":
    main()
