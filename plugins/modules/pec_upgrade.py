#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_upgrade
short_description: Preflight gates and installer run of a PEC e-SUS APS upgrade
version_added: 0.1.0
description:
  - With O(action=preflight) (read-only) decides what an upgrade to O(target_version) means on this host
    (C(upgrade), C(current) or C(refuse)) and checks the gates that must pass before anything is touched
    (free disk for the backup, the copy kept aside and the installer; the locale; the installer's SHA-256;
    a Java runtime). Problems are returned in RV(blockers), each with a code and a message that says what to do.
  - With O(action=install) checks the installer's SHA-256 again and runs it in update mode
    (C(java -jar INSTALLER FLAGS), no standard input, never a password on the command line), then reads the
    version the installer wrote to O(pec_config_path).
  - This module neither stops services, nor takes the backup, nor rolls back; the C(sesdf.esus.upgrade) role does.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - O(action=preflight) is read-only and runs the same in check mode.
      - O(action=install) in check mode runs nothing and reports C(changed) when the installed version is older
        than O(target_version).
  diff_mode:
    support: full
    details: O(action=install) returns the installed version before and after.
  platform:
    support: full
    platforms: posix
options:
  action:
    description: C(preflight) checks (read-only); C(install) runs the installer.
    type: str
    choices: [preflight, install]
    default: preflight
  target_version:
    description: The PEC version to upgrade to.
    type: str
    required: true
  checks:
    description:
      - Gates to check with O(action=preflight), besides the version decision (always made).
    type: list
    elements: str
    choices: [disk, locale, installer, java]
    default: [disk, locale, installer, java]
  installer:
    description: Path of the installer jar on the server.
    type: path
  installer_sha256:
    description: Expected SHA-256 of the installer jar (64 hex digits). Required with O(installer).
    type: str
  installer_size_bytes:
    description:
      - Size of the installer when it is not yet on the server (to check the disk before copying it).
    type: int
    default: 0
  installer_flags:
    description:
      - Installer flags in update mode. C(-continue) is unconfirmed for 4.5.2. A password flag is refused.
    type: list
    elements: str
    default: ['-console', '-continue']
  installer_timeout:
    description: Seconds the installer may run.
    type: int
    default: 3600
  installer_log:
    description: The installer's own log, whose last lines are returned when it fails (unconfirmed for 4.5.2).
    type: path
    default: /opt/e-SUS/log/instalador.log
  java_bin:
    description: Java executable to launch the installer; default the system C(java), then the PEC's C(jreDirectory).
    type: path
  backup_dir:
    description: Where the pre-upgrade backup is written (its size is estimated from the database size).
    type: path
    default: /var/backups/esus
  backup_size_factor:
    description: Expected backup size as a fraction of the database size (1.0 is conservative; dumps are compressed).
    type: float
    default: 1.0
  keep_aside_dir:
    description: Where the previous install tree is copied before the installer runs.
    type: path
    default: /var/backups/esus/upgrade
  staging_dir:
    description: Where the installer jar is staged.
    type: path
    default: /var/cache/sesdf-esus/upgrade
  margin_bytes:
    description: Free space to leave on each file system besides what the upgrade needs.
    type: int
    default: 1073741824
  locale:
    description: Locale the PEC needs.
    type: str
    default: pt_BR.UTF-8
  version_key:
    description: Key of C(tb_config_sistema) that holds the database version (unconfirmed for 4.5.2).
    type: str
    default: VERSAOBANCODADOS
"""

EXAMPLES = r"""
- name: Decide and check the gates
  sesdf.esus.pec_upgrade:
    target_version: 4.5.2
    installer: /var/cache/sesdf-esus/upgrade/eSUS-AB-PEC-4.5.2-Linux64.jar
    installer_sha256: "{{ upgrade_installer_sha256 }}"
  register: plan

- name: Run the installer
  sesdf.esus.pec_upgrade:
    action: install
    target_version: 4.5.2
    installer: /var/cache/sesdf-esus/upgrade/eSUS-AB-PEC-4.5.2-Linux64.jar
    installer_sha256: "{{ upgrade_installer_sha256 }}"
  when: plan.decision == 'upgrade'
"""

RETURN = r"""
decision:
  description: C(upgrade), C(current) (already at the target) or C(refuse).
  returned: always
  type: str
  sample: upgrade
msg:
  description: What the decision means, or what the installer did.
  returned: always
  type: str
installed:
  description: Installed version per source and the one used for the decision.
  returned: always
  type: dict
  sample: {config: 4.2.8, database: 4.2.8, version: 4.2.8}
target_version:
  description: The target, normalized.
  returned: always
  type: str
  sample: 4.5.2
blockers:
  description:
    - Gates that do not pass, each with C(code) and C(msg).
    - Codes are missing, newer, inconsistent, database, disk, locale, installer, java.
  returned: always
  type: list
  elements: dict
disk:
  description: Per file system, free bytes and the bytes the upgrade needs there.
  returned: when the disk check ran
  type: list
  elements: dict
locale:
  description: The locale and whether it is installed.
  returned: when the locale check ran
  type: dict
  sample: {name: pt_BR.UTF-8, present: false}
installer:
  description: The installer on the server, its SHA-256 and whether it matches.
  returned: when the installer check ran
  type: dict
java:
  description: Java executable that launches the installer, or null.
  returned: when the java check ran
  type: str
database_size_bytes:
  description: Size of the PEC database.
  returned: when the disk check ran
  type: int
rc:
  description: Installer exit code.
  returned: action=install, not in check mode
  type: int
stdout_lines:
  description:
    - Last lines of the installer output, redacted (the output can hold credentials) with the install's own database
      passwords and the key/value forms (C(password=...), a C(Senha) line, a password in a URL) masked.
  returned: action=install, not in check mode
  type: list
  elements: str
installer_flags:
  description:
    - Flags passed to the installer, the configured ones that its own C(-help) lists (all of them when C(-help)
      lists none). C(-continue) is unconfirmed for 4.5.2, so it is only passed when the installer offers it.
  returned: action=install, not in check mode
  type: list
  elements: str
installer_flags_dropped:
  description: Configured flags not passed because the installer's C(-help) does not list them (a warning says so).
  returned: action=install, not in check mode
  type: list
  elements: str
failure_modes:
  description:
    - Known failure modes found in the installer output and log, each C(code) (C(version_mismatch),
      C(out_of_memory), C(locale), C(time_zone), C(old_files)) and C(hint) (what to do); the hints end RV(msg).
  returned: on installer failure
  type: list
  elements: dict
installer_log_lines:
  description: Last lines of the installer's own log when it failed, redacted like RV(stdout_lines).
  returned: on installer failure
  type: list
  elements: str
executed_queries:
  description: SQL run (read-only).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._redact import redact, redact_lines
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import (
    PecError,
    normalize_version,
    pec_argument_spec,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall
from ansible_collections.sesdf.esus.plugins.module_utils.pec_upgrade import (
    DECISION_UPGRADE,
    HostRunner,
    adapt_flags,
    check_flags,
    check_sha256,
    diagnose,
    find_java,
    installer_log_tail,
    installer_status,
    plan,
    preflight,
    read_versions,
    run_installer,
    supported_flags,
    tail,
)


def install_action(module, install):
    p = module.params
    target = normalize_version(p["target_version"])
    versions, _db_size, problems, _executed, jre = read_versions(p, install, with_db=False)
    before = versions["config"]
    result = {"installed": versions, "target_version": target, "blockers": problems, "executed_queries": []}
    if not install.present or before is None:
        module.fail_json(
            msg=f"no PEC install with a readable {install.config_path}: the installer is not run", **result
        )
    decision, msg = plan(before, target)
    result.update(decision=decision)
    if decision != DECISION_UPGRADE:
        result.update(msg=msg, changed=False)
        return result
    try:
        flags = check_flags(p["installer_flags"])
        expected = check_sha256(p["installer_sha256"])
    except PecError as exc:
        module.fail_json(msg=exc.msg, **result)
    diff = {"before": {"version": normalize_version(before)}, "after": {"version": target}}
    if module.check_mode:
        result.update(changed=True, msg=f"would run the installer to upgrade {before} to {target}", diff=diff)
        return result
    status = installer_status(p["installer"], expected)
    if not status["matches"]:
        module.fail_json(
            msg=f"installer {p['installer']} is missing or its SHA-256 is not {expected}: not run",
            installer=status,
            **result,
        )
    java = find_java(p["java_bin"], jre, runner=HostRunner())
    if not java:
        module.fail_json(msg="no Java runtime to launch the installer; install one (upgrade_jre_package)", **result)
    flags, dropped = adapt_flags(flags, supported_flags(java, p["installer"]))
    if dropped:
        module.warn(f"the installer's -help does not list {', '.join(dropped)}: not passed")
    result.update(installer_flags=flags, installer_flags_dropped=dropped)
    # the installer's output and log can hold credentials: what is returned is masked with the install's passwords
    # (read before and after the run, the installer may write new ones) and the known key/value forms
    secrets = install.secret_values()
    try:
        rc, output, cmd = run_installer(
            java, p["installer"], flags, os.path.dirname(p["installer"]), p["installer_timeout"], secrets=secrets
        )
    except PecError as exc:
        secrets |= install.secret_values()
        details = dict(exc.details, stdout_lines=redact_lines(exc.details.get("stdout_lines"), secrets))
        module.fail_json(msg=redact(exc.msg, secrets), changed=True, **details, **result)
    secrets |= install.secret_values()
    result.update(rc=rc, cmd=redact_lines(cmd, secrets), stdout_lines=redact_lines(tail(output), secrets))
    try:
        after = normalize_version(install.config().get("version"))
    except PecError:
        after = None
    diff["after"] = {"version": after}
    result.update(diff=diff, changed=True)
    if rc != 0:
        log_lines = installer_log_tail(p["installer_log"], secrets)
        last = next((line for line in reversed(result["stdout_lines"]) if line.strip()), "no output")
        found = diagnose("\n".join(result["stdout_lines"] + log_lines))
        hints = "".join(f"; {d['hint']}" for d in found)
        module.fail_json(
            msg=f"the installer {os.path.basename(p['installer'])} failed with exit code {rc}: {last}{hints}",
            failure_modes=found,
            installer_log_lines=log_lines,
            **result,
        )
    if after != target:
        module.fail_json(msg=f"the installer exited 0 but {install.config_path} says {after}, not {target}", **result)
    result["msg"] = f"installer upgraded the PEC from {normalize_version(before)} to {after}"
    return result


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        action=dict(type="str", default="preflight", choices=["preflight", "install"]),
        target_version=dict(type="str", required=True),
        checks=dict(
            type="list",
            elements="str",
            default=["disk", "locale", "installer", "java"],
            choices=["disk", "locale", "installer", "java"],
        ),
        installer=dict(type="path"),
        installer_sha256=dict(type="str"),
        installer_size_bytes=dict(type="int", default=0),
        installer_flags=dict(type="list", elements="str", default=["-console", "-continue"]),
        installer_timeout=dict(type="int", default=3600),
        installer_log=dict(type="path", default="/opt/e-SUS/log/instalador.log"),
        java_bin=dict(type="path"),
        backup_dir=dict(type="path", default="/var/backups/esus"),
        backup_size_factor=dict(type="float", default=1.0),
        keep_aside_dir=dict(type="path", default="/var/backups/esus/upgrade"),
        staging_dir=dict(type="path", default="/var/cache/sesdf-esus/upgrade"),
        margin_bytes=dict(type="int", default=1073741824),
        locale=dict(type="str", default="pt_BR.UTF-8"),
        version_key=dict(type="str", default="VERSAOBANCODADOS", no_log=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("action", "install", ("installer", "installer_sha256"))],
    )
    install = PecInstall(module.params)
    try:
        if module.params["action"] == "preflight":
            result = preflight(module.params, install)
            result["changed"] = False
        else:
            result = install_action(module, install)
    except PecError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
