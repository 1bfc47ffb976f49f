# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the modules whose writes into the PEC's tables pass the read-only schema probe (module_utils
pec_compat): on what the probe's verdict rests."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  schema_trust:
    description:
      - On what a write into the PEC's own tables may rest. The collection's built-in schema profiles describe the PEC
        test double (names from public evidence, unconfirmed on real servers).
      - V(survey) (default) - a write capability is supported only when the built-in profile matches AND a capability
        profile built from a survey of a real PEC of this exact version (O(capability_profiles), docs/survey.md) has,
        on the capability's tables, exactly this server's schema. Otherwise it is refused before anything is written,
        naming the manual path in the PEC's UI (a manual step where a flow needs it).
      - V(double) - the built-in profiles are trusted; only for the test double (the lab).
    type: str
    choices: [survey, double]
    default: survey
  capability_profiles:
    description:
      - Capability profiles made from surveys of real servers (C(playbooks/survey.yml), filter
        C(sesdf.esus.capability_profile)), each a dict with C(pec_version), C(source) and C(tables).
    type: list
    elements: dict
    default: []
"""
