#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_readiness
short_description: Measure whether a UBS is apt for the migration (link speed and homologated equipment)
version_added: 0.3.0
description:
  - The technical note declares a UBS apt when its data link is GDFNET of at least 16 Mb and its internal network
    has only equipment homologated by CTINF. This module measures it from the UBS server instead of trusting a label.
  - Throughput is measured toward O(target) only, with C(iperf3 --json) bounded in seconds (C(-t)) and in bytes
    (C(-b), a rate cap of O(max_bytes) * 8 / O(max_seconds)); when iperf3 fails and O(http_url) is set (a URL on the
    same target host), a download stopped at O(max_bytes) or O(max_seconds).
  - The equipment seen is the neighbour table (C(ip -j neigh show)), each MAC's first three octets looked up in
    O(homologated); declared devices (O(declared_equipment)) match by vendor and model or MAC prefix.
  - The verdict (C(apta)/C(inapta)) comes with every reason in Portuguese. A previous observation (O(previous))
    of the same target younger than O(max_age_days) is reused, so a rerun measures nothing and changes nothing.
  - The module writes nothing; the readiness role records RV(data) with M(sesdf.esus.pec_state). When the verdict
    disagrees with O(group) it warns; CTINF's group stays the decision.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Measures in check mode too (the measurement writes nothing on the server).
  diff_mode:
    support: none
options:
  target:
    description:
      - The regional target host (name or address) the throughput is measured toward; nothing else is contacted.
    type: str
    required: true
  method:
    description:
      - V(auto) tries iperf3, then the HTTP transfer when O(http_url) is set.
    type: str
    choices: [auto, iperf3, http]
    default: auto
  iperf3_port:
    description: Port of the iperf3 server on the target.
    type: int
    default: 5201
  reverse:
    description: Measure the target-to-UBS direction (iperf3 C(-R)) instead of UBS-to-target.
    type: bool
    default: false
  http_url:
    description: Fallback download URL; must be on O(target).
    type: str
    default: ""
  max_seconds:
    description: Upper bound of the test's duration.
    type: int
    default: 5
  max_bytes:
    description: Upper bound of the bytes transferred.
    type: int
    default: 20000000
  min_mbps:
    description: Minimum throughput of an apt UBS (the note's 16 Mb).
    type: float
    default: 16.0
  link:
    description: The link as declared in the inventory, C({type, nominal_mbps}) (type V(gdfnet) for an apt UBS).
    type: dict
    default: {}
  declared_equipment:
    description: Devices of the UBS network declared in the inventory, C([{vendor, model, mac}]).
    type: list
    elements: dict
    default: []
  homologated:
    description: CTINF's homologated list, C([{vendor, model, mac_prefix}]) (a MAC prefix is C(aa:bb:cc)).
    type: list
    elements: dict
    default: []
  ignore_addresses:
    description: Neighbour addresses that are not equipment of the UBS network (e.g. CTINF's own router).
    type: list
    elements: str
    default: []
  group:
    description: The group CTINF put the UBS in (V(ubs_aptas), V(ubs_inaptas)), empty when none.
    type: str
    default: ""
  previous:
    description: The current state file's content (C({concern, produced_at, confirmed_at, data})), if any.
    type: dict
    default: {}
  max_age_days:
    description: Reuse an observation of the same target younger than this; V(0) measures every run.
    type: int
    default: 30
  force:
    description: Measure even when a fresh observation exists.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Measure the UBS's readiness toward the region's target
  sesdf.esus.pec_readiness:
    target: prontidao-norte.saude.df.gov.br
    link: {type: gdfnet, nominal_mbps: 20}
    homologated:
      - {vendor: Intelbras, model: SG 2404 MR, mac_prefix: "00:1a:3f"}
    group: ubs_aptas
  register: readiness
"""

RETURN = r"""
data:
  description: >-
    verdict (apta/inapta), reasons (Portuguese), measured_mbps, measurement (method, mbps, bytes, at_cap),
    measurement_error, measured_at, target, link, equipment (seen, declared, not_homologated), group, agrees.
  returned: always
  type: dict
measured:
  description: Whether the network was measured in this run (false when a fresh observation was reused).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.readiness import Runner, assess


def main():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type="str", required=True),
            method=dict(type="str", choices=["auto", "iperf3", "http"], default="auto"),
            iperf3_port=dict(type="int", default=5201),
            reverse=dict(type="bool", default=False),
            http_url=dict(type="str", default=""),
            max_seconds=dict(type="int", default=5),
            max_bytes=dict(type="int", default=20000000),
            min_mbps=dict(type="float", default=16.0),
            link=dict(type="dict", default={}),
            declared_equipment=dict(type="list", elements="dict", default=[]),
            homologated=dict(type="list", elements="dict", default=[]),
            ignore_addresses=dict(type="list", elements="str", default=[]),
            group=dict(type="str", default=""),
            previous=dict(type="dict", default={}),
            max_age_days=dict(type="int", default=30),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    now = utcnow()
    try:
        data, measured = assess(module.params, Runner(), module.params["previous"], now)
    except PecError as exc:
        module.fail_json(msg=str(exc))
    if data["group"] and not data["agrees"]:
        module.warn(
            f"MEDIÇÃO DIVERGE DA CTINF: medido {data['verdict']}, mas a UBS está em {data['group']} "
            f"({'; '.join(data['reasons'])}). O grupo da CTINF continua sendo a decisão."
        )
    module.exit_json(changed=False, data=data, measured=measured)


if __name__ == "__main__":
    main()
