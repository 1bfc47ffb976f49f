#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_cnes_import
short_description: Import a CNES file into a PEC 5.x through its web session and follow the import
version_added: 0.1.0
description:
  - Opens a session with the PEC as its web front end does (module_utils C(pec_web)) - C(GET /) for the
    C(XSRF-TOKEN) cookie, the GraphQL C(login) mutation at C(/api/graphql) with the header C(X-XSRF-TOKEN) - then
    posts the CNES file (C(.xml) or C(XmlParaESUS*.zip)), byte for byte, to O(api_path) as the multipart field
    C(file).
  - O(municipio_id) is the PEC's B(internal) id of the município (a C(tb_localidade) row, see
    M(sesdf.esus.pec_municipio)), not its IBGE code. The API is documented from PEC 5.4.37.
  - The PEC imports asynchronously. With O(status_query) and O(status_path) the status of the newest import is
    polled until C(CONCLUIDO) (RV(verified) true), a status of O(status_failed) (the task fails) or O(status_timeout).
    The query's arguments and the shape of its answer are not public, so both have no working default. Without
    them, on timeout, or when the answer has no O(status_path), the file was submitted but its end is not verifiable
    - RV(verified) is false and RV(message) says so; the role C(sesdf.esus.cnes_import) records it as a manual
    confirmation due.
  - A record of the newest import is read before the upload; while the answer still shows it, the new import is not
    listed yet, so a previous C(CONCLUIDO) is never taken for this one.
  - Nothing is posted twice once the PEC accepted the file. The password is never returned or put in a message.
    No proxy is used; the certificate of an HTTPS O(base_url) is not validated (the PEC is asked on loopback).
  - Validate the file first with M(sesdf.esus.cnes_xml); the role C(sesdf.esus.cnes_import) decides when to call this.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: partial
    details:
      - In check mode nothing is sent to the PEC (no login, no upload, no status query); C(changed) is true and
        RV(message) says what would be imported. The options are checked.
  diff_mode:
    support: none
options:
  base_url:
    description: Base URL of the PEC as seen from the server, e.g. C(http://127.0.0.1:8080).
    type: str
    required: true
  api_path:
    description: Path of the import endpoint; C({municipio}) is replaced by O(municipio_id).
    type: str
    default: /api/cnes/{municipio}
  municipio_id:
    description: The PEC's internal id of the município (not the IBGE code).
    type: str
    required: true
  path:
    description: The CNES file on the managed host.
    type: path
    required: true
  user:
    description: Login (CPF) of an installation administrator; masked in the output like the password.
    type: str
    required: true
  password:
    description: Its password.
    type: str
    required: true
  timeout:
    description: Seconds to wait for each answer of the PEC.
    type: int
    default: 300
  status_query:
    description:
      - GraphQL query of the PEC's CNES imports (C(importacoesCnes)), from a survey of this PEC version. Empty - the
        end of the import is not verifiable.
    type: str
    default: ""
  status_path:
    description:
      - Dotted path to the newest import's status in the JSON answer of O(status_query); numeric parts index lists,
        e.g. C(data.importacoesCnes.content.0.status).
    type: str
    default: ""
  status_failed:
    description: Statuses that mean the import failed (none is known on real servers).
    type: list
    elements: str
    default: []
  status_interval:
    description: Seconds between two status queries.
    type: int
    default: 5
  status_timeout:
    description: Seconds to wait for C(CONCLUIDO) after the upload.
    type: int
    default: 900
"""

EXAMPLES = r"""
- name: Import the CNES file
  sesdf.esus.pec_cnes_import:
    base_url: http://127.0.0.1:8080
    municipio_id: "{{ municipio.municipio_id }}"
    path: /var/lib/sesdf-esus/cnes/recebido/XmlParaESUS31_530010.zip
    user: "{{ cnes_import_api_user }}"
    password: "{{ cnes_import_api_password }}"
    status_query: "query { importacoesCnes { content { id status } } }"
    status_path: data.importacoesCnes.content.0.status
  no_log: true
  register: imported
"""

RETURN = r"""
verified:
  description: True only when the PEC reported the import C(CONCLUIDO).
  returned: always
  type: bool
status:
  description: The last status read, or null.
  returned: always
  type: str
  sample: CONCLUIDO
message:
  description: What happened, in Portuguese (a not verifiable end says to confirm in the PEC's CNES menu).
  returned: always
  type: str
response:
  description: The PEC's answer to the upload when it is a small JSON object, else empty.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_web import (
    DEFAULT_API_PATH,
    PecWebSession,
    check_import_params,
    import_cnes,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            base_url=dict(type="str", required=True),
            api_path=dict(type="str", default=DEFAULT_API_PATH),
            municipio_id=dict(type="str", required=True),
            path=dict(type="path", required=True),
            user=dict(type="str", required=True, no_log=True),  # a CPF: masked in the output like the password
            password=dict(type="str", required=True, no_log=True),
            timeout=dict(type="int", default=300),
            status_query=dict(type="str", default=""),
            status_path=dict(type="str", default=""),
            status_failed=dict(type="list", elements="str", default=[]),
            status_interval=dict(type="int", default=5),
            status_timeout=dict(type="int", default=900),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        check_import_params(p)
        PecWebSession(p["base_url"])
    except PecError as exc:
        module.fail_json(msg=exc.msg, verified=False, status=None)
    if module.check_mode:
        module.exit_json(
            changed=True,
            verified=False,
            status=None,
            message=f"would import {p['path']} into the PEC (município id {p['municipio_id']})",
            response={},
        )
    try:
        result = import_cnes(p)
    except PecError as exc:
        module.fail_json(
            msg=exc.msg,
            verified=False,
            status=exc.details.get("status"),
            response=exc.details.get("response", {}),
        )
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
