#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_municipio
short_description: Read the PEC's internal id of a município (for the CNES import API)
version_added: 0.3.0
description:
  - The CNES import API of PEC 5.x (M(sesdf.esus.pec_cnes_import)) takes the PEC's internal id of the município, a
    C(tb_localidade) row, not its IBGE code. This module reads it with O(query), a single C(SELECT) IT writes from a
    survey of a real server of this PEC version (docs/survey.md); the columns of C(tb_localidade) are not public, so
    there is no default.
  - In O(query), C(%(ibge\)s) is replaced by the 7-digit IBGE code (a 6-digit O(ibge) gets its check digit) as an SQL
    string literal. The query runs in a C(READ ONLY) transaction that is rolled back.
  - One row with one non-empty value is the id. Zero or several rows give RV(municipio_id) null and RV(message) says
    why (the role then stages the file for the manual import). A query error (a table or column this PEC lacks)
    fails the task with the database's message.
  - Changes nothing in the PEC.
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
  ibge:
    description: IBGE code of the município, 6 or 7 digits (C(sesdf_esus_ibge)).
    type: str
    required: true
  query:
    description:
      - A single C(SELECT) (or C(WITH ... SELECT)) returning one row with one column, the id, for the IBGE code
        written C(%(ibge\)s). Role variable C(cnes_import_municipio_query).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Read the PEC's internal id of the município (query from the survey of this PEC version)
  sesdf.esus.pec_municipio:
    ibge: "{{ sesdf_esus_ibge }}"
    query: "SELECT co_localidade FROM tb_localidade WHERE co_ibge = %(ibge)s"
  register: municipio
"""

RETURN = r"""
municipio_id:
  description: The PEC's internal id of the município, or null when the query did not return exactly one value.
  returned: success
  type: str
  sample: "5584"
rows:
  description: Rows the query returned.
  returned: success
  type: int
ibge:
  description: The 7-digit IBGE code the query was run for.
  returned: success
  type: str
  sample: "5300108"
message:
  description: Why RV(municipio_id) is null (Portuguese), else null.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_module import pec_database
from ansible_collections.sesdf.esus.plugins.module_utils.pec_municipio import find_municipio_id, municipio_query


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        ibge=dict(type="str", required=True),
        query=dict(type="str", required=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        municipio_query(module.params["query"], module.params["ibge"])
    except PecError as exc:
        module.fail_json(msg=exc.msg)
    with pec_database(module) as pec:
        found = find_municipio_id(pec.client, module.params["query"], module.params["ibge"])
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
