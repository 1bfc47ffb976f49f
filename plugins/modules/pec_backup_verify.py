#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_backup_verify
short_description: Verify an existing backup of the PEC e-SUS database
version_added: 0.1.0
description:
  - Checks one backup archive without changing it. First the sha256 against the recorded checksum (O(sha256), else the
    C(<path>.sha256) file beside it), then a full read (zstd frame checksum and C(pg_restore -f /dev/null)
    of every entry). C(pg_restore --list) alone is not used, because it passes on truncated archives.
  - Reads this collection's C(.pgdump.zst) archives and plain C(pg_dump -Fc) files (e.g. the installer's).
  - With O(level=restore), also restores it into a scratch database (dropped afterwards) and reports
    per-table row counts; with O(compare_with_source=true) they are compared with the live database.
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: Read-only for O(level=full_read); with O(level=restore) the scratch restore is skipped in check mode.
  diff_mode:
    support: none
options:
  path:
    description: The archive to verify.
    type: path
    required: true
  sha256:
    description: Expected sha256; when not set, read from C(<path>.sha256).
    type: str
  require_checksum:
    description: Fail when no expected checksum is known.
    type: bool
    default: true
  level:
    description: C(full_read) or C(restore).
    type: str
    choices: [full_read, restore]
    default: full_read
  compare_with_source:
    description: With O(level=restore), compare the restored row counts with the live database.
    type: bool
    default: false
  zstd_path:
    description: Path of C(zstd).
    type: path
  maintenance_db:
    description: Database to connect to for creating and dropping the scratch database.
    type: str
    default: postgres
  fail_on_error:
    description: Fail the task when the archive is not intact (otherwise only RV(verification.ok) is false).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Check the backup the IT department keeps on the share
  sesdf.esus.pec_backup_verify:
    path: /mnt/backup-ti/esus_migracao_20260301T020000Z.pgdump.zst
"""

RETURN = r"""
verification:
  description: What was found.
  returned: always
  type: dict
  contains:
    ok: {description: "Checksum matched and the full read (and restore test) passed.", type: bool}
    sha256: {description: "sha256 of the file.", type: str}
    expected_sha256: {description: "The recorded checksum.", type: str}
    checksum_ok: {description: "Checksum matched.", type: bool}
    full_read_ok: {description: "Every entry could be read.", type: bool}
    format: {description: "C(zstd) or C(custom).", type: str}
    size_bytes: {description: "Size.", type: int}
    problems: {description: "What is wrong, in words.", type: list, elements: str}
    restore: {description: "Scratch restore result (level restore).", type: dict}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils.pec_archive import (
    find_tool,
    read_sha_sidecar,
    sniff_format,
    verify_archive,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall
from ansible_collections.sesdf.esus.plugins.module_utils.pec_restore import restore_test, row_counts


def run(module):
    p = module.params
    install = PecInstall(p)
    fmt = sniff_format(p["path"])
    zstd = find_tool("zstd", p.get("zstd_path")) if fmt == "zstd" else None
    expected = (p.get("sha256") or "").lower() or read_sha_sidecar(p["path"])
    if expected is None and p["require_checksum"]:
        raise PecError(
            f"no recorded checksum for {p['path']} (no .sha256 file beside it and no sha256 option); "
            "give the checksum or set require_checksum: false"
        )
    bin_dir = install.pg_bin_dir()
    check = verify_archive(p["path"], os.path.join(bin_dir, "pg_restore"), zstd, expected)
    if check["ok"] and p["level"] == "restore" and not module.check_mode:
        conn = install.connection()
        with PgClient(bin_dir, conn, timeout=3600) as client:
            source = row_counts(client) if p["compare_with_source"] else {}
            test = restore_test(client, p["path"], fmt, zstd, source, source, p["maintenance_db"])
            if not p["compare_with_source"]:
                test["ok"] = test["tables"] > 0
            check["restore"] = test
            if not test["ok"]:
                check["ok"] = False
                check["problems"].append(f"restore test failed: {test['mismatches'] or 'no tables restored'}")
    return check


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        path=dict(type="path", required=True),
        sha256=dict(type="str"),
        require_checksum=dict(type="bool", default=True),
        level=dict(type="str", default="full_read", choices=["full_read", "restore"]),
        compare_with_source=dict(type="bool", default=False),
        zstd_path=dict(type="path"),
        maintenance_db=dict(type="str", default="postgres"),
        fail_on_error=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        check = run(module)
    except PecError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    if not check["ok"] and module.params["fail_on_error"]:
        module.fail_json(
            msg=f"backup {module.params['path']} is NOT intact: " + "; ".join(check["problems"]), verification=check
        )
    module.exit_json(changed=False, verification=check)


if __name__ == "__main__":
    main()
