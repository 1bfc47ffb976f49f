#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_restore
short_description: Restore a verified backup over the PEC e-SUS database, safely
version_added: 0.1.0
description:
  - Checks the archive's sha256 first (O(sha256), else the C(<path>.sha256) file beside it); a mismatch
    fails before anything is touched.
  - Over the live database (O(target_db) unset or equal to the PEC's database), follows the official flow
    with the order made safe, using the PEC's own tools; nothing is dropped until the new copy restored fully.
    1. create O(scratch_db) (default C(<db>_new)) with the live database's encoding and locale;
    2. C(pg_restore --exit-on-error -1) into it (a failure drops only the scratch database);
    3. block new connections to the live database, end its sessions, rename it to C(<db>_pre_restore_<UTC time>);
    4. rename the scratch database to the live name;
    5. drop the previous database unless O(keep_previous=true).
  - With O(target_db) set to another name, restores into that database (tests, inspection); it must not exist
    unless O(replace_target=true).
  - Reads this collection's C(.pgdump.zst) archives and plain C(pg_dump -Fc) files.
  - The PEC application must be stopped before a restore over the live database (O(require_app_stopped)).
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Verifies the checksum, checks the target and the application state, and reports what it would do.
  diff_mode:
    support: none
options:
  path:
    description: The archive to restore.
    type: path
    required: true
  sha256:
    description: Expected sha256; when not set, read from C(<path>.sha256).
    type: str
  allow_unverified:
    description: Restore even when no checksum is known (never when one is known and differs).
    type: bool
    default: false
  target_db:
    description: Database to restore into; default the PEC's database (restore with swap).
    type: str
  scratch_db:
    description: Name of the database built before the swap; default C(<target>_new).
    type: str
  replace_target:
    description: With a O(target_db) other than the live one, drop it first when it exists.
    type: bool
    default: false
  keep_previous:
    description: Keep the replaced database as C(<db>_pre_restore_<time>) instead of dropping it.
    type: bool
    default: false
  require_app_stopped:
    description: Refuse to swap while O(app_service) is active.
    type: bool
    default: true
  single_transaction:
    description: Restore in one transaction (C(pg_restore -1)), as the official flow does.
    type: bool
    default: true
  pg_restore_extra_args:
    description: Extra C(pg_restore) arguments, e.g. C(["-O"]) (the official flow's no-owner).
    type: list
    elements: str
    default: []
  zstd_path:
    description: Path of C(zstd).
    type: path
  maintenance_db:
    description: Database to connect to for create, rename and drop.
    type: str
    default: postgres
"""

EXAMPLES = r"""
- name: Roll back to the pre-upgrade backup
  sesdf.esus.pec_restore:
    path: "{{ backup_result.path }}"
    sha256: "{{ backup_result.sha256 }}"

- name: Restore into a separate database to inspect it
  sesdf.esus.pec_restore:
    path: /var/backups/esus/esus_manual_20260301T020000Z.pgdump.zst
    target_db: esus_inspecao
    replace_target: true
"""

RETURN = r"""
restore:
  description: What was done.
  returned: always
  type: dict
  contains:
    path: {description: "Archive restored.", type: str}
    sha256: {description: "Checksum verified.", type: str}
    target_db: {description: "Database that now holds the backup.", type: str}
    swapped: {description: "The live database was replaced (scratch + rename).", type: bool}
    previous_db: {description: "Name of the kept previous database (O(keep_previous)).", type: str}
    row_counts: {description: "Rows per table in the restored database.", type: dict}
    duration_s: {description: "Seconds spent.", type: float}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_restore import run_restore


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        path=dict(type="path", required=True),
        sha256=dict(type="str"),
        allow_unverified=dict(type="bool", default=False),
        target_db=dict(type="str"),
        scratch_db=dict(type="str"),
        replace_target=dict(type="bool", default=False),
        keep_previous=dict(type="bool", default=False),
        require_app_stopped=dict(type="bool", default=True),
        single_transaction=dict(type="bool", default=True),
        pg_restore_extra_args=dict(type="list", elements="str", default=[]),
        zstd_path=dict(type="path"),
        maintenance_db=dict(type="str", default="postgres"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        result = run_restore(dict(module.params), check_mode=module.check_mode)
    except PecError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(changed=result.pop("changed"), restore=result)


if __name__ == "__main__":
    main()
