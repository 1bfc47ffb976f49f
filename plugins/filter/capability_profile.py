# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.sesdf.esus.plugins.module_utils.pec_capability import capability_profile as _profile

DOCUMENTATION = r"""
name: capability_profile
short_description: Turn a PEC survey bundle into a capability profile
version_added: 0.3.0
description:
  - Turns the bundle of M(sesdf.esus.pec_survey) into a capability profile - the surveyed schema of the tables the
    collection uses (C(tables), only the tables found), the names of the C(tb_config_sistema) keys, the transmission
    nodes, situations and tables present or absent, and for every write capability of the collection whether that
    PEC's schema supports it and what it lacks, by the rules the live schema probe applies.
  - Runs on the control node; reads nothing but the bundle.
positional: _input
options:
  _input:
    description: A survey bundle (C(format) 1).
    type: dict
    required: true
  situations:
    description:
      - Lote situation names per role (C(generated), C(sent)) when they differ from the defaults (C(GERADO),
        C(ENVIADO)).
    type: dict
author:
  - SES-DF NTINF (@sesdf-ntinf)
"""

EXAMPLES = r"""
- name: Write the capability profile beside the bundle
  ansible.builtin.copy:
    content: "{{ survey.bundle | sesdf.esus.capability_profile | to_nice_json }}"
    dest: "/srv/survey/capability-5.5.28.json"
    mode: "0600"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description:
    - The profile - C(format), C(source), C(pec_version), C(database_surveyed), C(tables), C(config_keys),
      C(transmission) (C(nodes), C(node_situations), C(lote_situations), C(tables_present), C(tables_absent)) and
      C(capabilities) (per capability C(supported), C(missing), C(profile)).
  type: dict
"""


def capability_profile(bundle, situations=None):
    try:
        return _profile(bundle, situations)
    except ValueError as exc:
        raise AnsibleFilterError(f"capability_profile: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"capability_profile": capability_profile}
