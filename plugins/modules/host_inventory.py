#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_inventory
short_description: Inventory packages, services and listening sockets of a UBS server and compare them with a whitelist
version_added: 0.1.0
description:
  - In one pass lists the installed Debian packages (C(dpkg-query)), the systemd services that are enabled or
    running (C(systemctl)) and the listening TCP/UDP sockets with their processes and owning systemd service
    (C(ss) and C(/proc/PID/cgroup)).
  - Compares them with the allowed-application whitelist and returns every violation with the action an
    enforcing run would take (C(remove) a denied package, C(mask) an unlisted service or the unit of a listener
    that is not allowed, C(kill) a stray listener that belongs to no service, or C(none) when only a report is
    possible).
  - A name never makes a listener legitimate. A listening socket is allowed only by port, address B(and)
    owning unit (the C(units) of its rule); a unit called C(sesdf-esus-x.service) or C(systemd-x.service), or
    a rogue unit on the database port, is reported with action C(mask) like any other. The units in
    O(services_never_stop) and systemd PID 1 are only reported (action C(none)), never stopped.
  - Never changes the host; the C(sesdf.esus.hardening) role acts on the violations.
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
  platform:
    details: Debian-family hosts with systemd and iproute2 (C(ss)).
options:
  packages_allowed:
    description: Package name patterns (shell style) that IT allows, besides the OS priorities in O(priorities_allowed).
    type: list
    elements: str
    default: []
  priorities_allowed:
    description: Debian priorities whose packages count as the operating system and are always allowed.
    type: list
    elements: str
    default: [required, important, standard]
  packages_denied:
    description: Package name patterns that must not be installed (reported with action C(remove)).
    type: list
    elements: str
    default: []
  packages_protected:
    description:
      - Package patterns never proposed for removal even when denied (what the OS or the PEC needs).
        Essential and C(required) packages are always protected.
    type: list
    elements: str
    default: []
  services_allowed:
    description: Service unit name patterns allowed to be enabled or running.
    type: list
    elements: str
    default: []
  services_protected:
    description:
      - Service unit patterns never reported as unlisted services (systemd's own, D-Bus, the PEC).
      - This only exempts the service check; a listener of such a unit that is not allowed is still reported
        with action C(mask), unless the unit is in O(services_never_stop).
    type: list
    elements: str
    default: []
  services_never_stop:
    description:
      - Exact unit names never stopped nor masked (the PEC's application and database, SSH). A listener of
        theirs that is not allowed is reported with action C(none); fix the unit's configuration by hand.
    type: list
    elements: str
    default: []
  sockets_allowed:
    description:
      - Listening sockets allowed. Each item has C(port), C(proto) (C(tcp) or C(udp), default C(tcp)) and
        C(addresses), a list of C(any), C(loopback), an address or a network in CIDR notation (default C(any)).
      - C(units), a list of exact unit names that may own the socket (every process holding it must belong to
        one of them). Without C(units), any owner is accepted (weaker, so give the units).
    type: list
    elements: dict
    default: []
  include_inventory:
    description: Return the full inventory (hundreds of packages) besides the violations.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Compare the server with the whitelist
  sesdf.esus.host_inventory:
    packages_allowed: ["lib*", "openssh-*", "postgresql-*"]
    packages_denied: [telnetd, "rsh-*"]
    services_allowed: [ssh.service, cron.service, "e-SUS-*.service"]
    sockets_allowed:
      - {port: 22, proto: tcp, addresses: [any]}
      - {port: 5433, proto: tcp, addresses: [loopback], units: [e-SUS-AB-PostgreSQL.service]}
    services_never_stop: [e-SUS-PEC.service, e-SUS-AB-PostgreSQL.service, ssh.service]
  register: inv

- name: Denied packages still installed
  ansible.builtin.debug:
    var: inv.summary.denied_packages_installed
"""

RETURN = r"""
inventory:
  description: What is installed, enabled, running and listening (when O(include_inventory)).
  returned: success
  type: dict
  contains:
    packages:
      description: Installed packages (C(name), C(version), C(priority), C(essential), C(status)).
      type: list
      elements: dict
    services:
      description:
        - Enabled or running services (C(name), C(enabled), C(running), C(unit_file_state), C(active_state),
          C(sub_state)).
      type: list
      elements: dict
    sockets:
      description: Listening sockets (C(proto), C(address), C(port), C(processes) with C(name), C(pid), C(unit)).
      type: list
      elements: dict
violations:
  description:
    - What is outside the whitelist. C(kind) package/service/socket, C(name), C(reason)
      (C(denied), C(unlisted), C(wrong_address), C(wrong_unit)), C(action) (C(remove), C(mask), C(kill),
      C(none)) and C(detail) in Portuguese naming the owner (unit, process and pid); sockets add C(proto),
      C(port), C(address), C(pids), C(units), C(owners).
  returned: success
  type: list
  elements: dict
summary:
  description: Counts, and the denied packages still installed.
  returned: success
  type: dict
  sample:
    packages_installed: 241
    services_enabled_or_running: 12
    sockets_listening: 3
    violations: {packages: 1, services: 0, sockets: 1}
    denied_packages_installed: [telnetd]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.host_inventory import collect, compare, summarize
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages_allowed=dict(type="list", elements="str", default=[]),
            priorities_allowed=dict(type="list", elements="str", default=["required", "important", "standard"]),
            packages_denied=dict(type="list", elements="str", default=[]),
            packages_protected=dict(type="list", elements="str", default=[]),
            services_allowed=dict(type="list", elements="str", default=[]),
            services_protected=dict(type="list", elements="str", default=[]),
            services_never_stop=dict(type="list", elements="str", default=[]),
            sockets_allowed=dict(type="list", elements="dict", default=[]),
            include_inventory=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    whitelist = {k: module.params[k] for k in module.params if k != "include_inventory"}
    try:
        inventory = collect(
            dpkg_query=module.get_bin_path("dpkg-query", required=True),
            systemctl=module.get_bin_path("systemctl", required=True),
            ss=module.get_bin_path("ss", required=True),
        )
        violations = compare(inventory, whitelist)
    except PecError as exc:
        module.fail_json(msg=exc.msg)
    result = dict(changed=False, violations=violations, summary=summarize(inventory, violations))
    if module.params["include_inventory"]:
        result["inventory"] = inventory
    module.exit_json(**result)


if __name__ == "__main__":
    main()
