#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_cnes_import
short_description: Import a CNES file into the PEC through its API
version_added: 0.1.0
description:
  - Posts a CNES file (C(.xml) or C(XmlParaESUS*.zip)), byte for byte, to C(POST /api/cnes/{municipioId}) as the
    multipart field C(file).
  - The endpoint is documented from PEC 5.4.37 and is unconfirmed for 4.5.2. The lab double accepts HTTP Basic;
    the real PEC wants a session and an XSRF token, which this module does not do yet.
  - Validate the file first with M(sesdf.esus.cnes_xml); the role M(sesdf.esus.cnes_import) decides when to call this.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is posted and C(changed) is true.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  path:
    description: The CNES file on the managed host.
    type: path
    required: true
  url:
    description: Full URL of the import endpoint, e.g. C(http://127.0.0.1:8080/api/cnes/530010).
    type: str
    required: true
  user:
    description: Login (CPF) of an installation administrator.
    type: str
    required: true
  password:
    description: Its password.
    type: str
    required: true
  timeout:
    description: Seconds to wait for the PEC.
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Import the CNES file
  sesdf.esus.pec_cnes_import:
    path: /var/lib/sesdf-esus/cnes/recebido/XmlParaESUS31_530010.zip
    url: http://127.0.0.1:8080/api/cnes/530010
    user: "{{ cnes_import_api_user }}"
    password: "{{ cnes_import_api_password }}"
"""

RETURN = r"""
response:
  description: The PEC's JSON answer (the double answers unidades, equipes, profissionais, lotacoesCriadas).
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.cnes import post_cnes_file
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            url=dict(type="str", required=True),
            user=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True),
            timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    if module.check_mode:
        module.exit_json(changed=True, response={})
    p = module.params
    try:
        response = post_cnes_file(p["url"], p["path"], p["user"], p["password"], p["timeout"])
    except PecError as exc:
        module.fail_json(msg=exc.msg)
    module.exit_json(changed=True, response=response)


if __name__ == "__main__":
    main()
