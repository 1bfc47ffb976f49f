#!/usr/bin/python
# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pec_backup
short_description: Make a verified backup of the PEC e-SUS database
version_added: 0.1.0
description:
  - Dumps the PEC database with the PEC's own C(pg_dump) (C(-Fc -Z0), custom format, uncompressed) streamed
    through C(zstd -T0), into a hidden temporary name in O(dest_dir).
  - The archive is published under its final name (C(<db>_<label>_<UTC timestamp>.pgdump.zst)) only after
    pg_dump and zstd exited 0, the file was fsynced, a verification pass read it whole (sha256 of the bytes on
    disk, zstd frame checksum, C(pg_restore -f /dev/null) of every entry) and C(<archive>.sha256) and
    C(<archive>.manifest.json) were written beside it.
  - With O(verify_level=restore) the archive is also restored into a scratch database and per-table row
    counts are compared with the source (tables whose count changed during the dump are reported, not compared).
  - A database down, wrong credentials, a full disk or a killed run leave no file under a final name and older
    backups intact; temporaries of a killed run are removed by the next run (one run per directory at a time).
  - Optionally pushes an off-host copy (O(offhost_method)), prunes old copies (O(keep_daily), O(keep_weekly))
    and records the outcome in a status fact file (O(status_path)) that M(sesdf.esus.pec_info) reports.
  - With O(stop_app) the PEC application is stopped for the dump and started again at the end, whatever the
    outcome; a marker (O(app_stop_marker)) records meanwhile that this collection stopped it, so a run killed
    in between is followed by one (with or without O(stop_app)) that starts it again and removes the marker.
    An application stopped by somebody else (no marker) is left stopped and reported (RV(app.stopped_by_other)).
  - The password reaches the client tools only through a private C(PGPASSFILE).
author:
  - SES-DF NTINF (@sesdf-ntinf)
extends_documentation_fragment:
  - sesdf.esus.pec
  - sesdf.esus.attributes
  - sesdf.esus.attributes.platform
attributes:
  check_mode:
    support: full
    details: >-
      Connects to the database (read-only) and reports what it would write (and whether it would stop or start the
      application); writes nothing.
  diff_mode:
    support: none
options:
  dest_dir:
    description: Directory for the backups; created root-only (0700) when missing.
    type: path
    default: /var/backups/esus
  label:
    description: Word put in the file name (letters, digits, C(.), C(_), C(-)), e.g. C(pre-upgrade-4.5.2).
    type: str
    default: manual
  verify_level:
    description: C(full_read) checksum and full read; C(restore) also a restore into a scratch database.
    type: str
    choices: [full_read, restore]
    default: full_read
  compress_level:
    description: zstd compression level.
    type: int
    default: 3
  compress_threads:
    description: zstd worker threads (C(0) one per core).
    type: int
    default: 0
  zstd_path:
    description: Path of C(zstd); searched in C(PATH) when not set.
    type: path
  pg_dump_extra_args:
    description: Extra C(pg_dump) arguments (never a password).
    type: list
    elements: str
    default: []
  maintenance_db:
    description: Database to connect to for creating and dropping the scratch database.
    type: str
    default: postgres
  reuse_within_minutes:
    description:
      - When a verified backup with the same O(label) younger than this exists, check it again (checksum
        and full read) and return it instead of making a new one (RV(backup.reused), C(changed=false)). C(0) never.
    type: int
    default: 0
  keep_daily:
    description: Retention of backups with this O(label) (C(0) with O(keep_weekly=0) prunes nothing).
    type: int
    default: 0
  keep_weekly:
    description: Weekly copies kept beyond the daily ones.
    type: int
    default: 0
  keep_min:
    description: Never fewer than this many verified backups of this label remain; the newest is never deleted.
    type: int
    default: 2
  offhost_enabled:
    description: Push an off-host copy after the backup (and retry a pending one).
    type: bool
    default: false
  offhost_method:
    description:
      - C(mount) a share mounted on the server (O(offhost_dest) is a path); C(rsync) rsync over SSH
        (O(offhost_dest) is C(user@host:/dir)); C(controller) stage the copy for the role to fetch.
    type: str
    choices: [mount, rsync, controller]
    default: mount
  offhost_dest:
    description: Off-host destination (see O(offhost_method)).
    type: str
  offhost_require_mount:
    description: With C(mount), treat the destination as down unless a file system is mounted at or above it.
    type: bool
    default: true
  offhost_encrypt_recipient:
    description: age public key (C(age1...)); the off-host copy is encrypted to it.
    type: str
  offhost_ssh_options:
    description: Extra C(ssh) options for C(rsync), e.g. C(["-i", "/root/.ssh/backup_ed25519"]).
    type: list
    elements: str
    default: []
  status_path:
    description: Status fact file (JSON) updated after the run; empty to skip.
    type: path
    default: /etc/ansible/facts.d/sesdf_esus_backup.fact
  fail_on_unverified:
    description: Fail the task when no verified backup was made.
    type: bool
    default: true
  stop_app:
    description: Stop the PEC application (O(app_service)) for the dump when it runs, and start it again after.
    type: bool
    default: false
  app_service:
    description: systemd unit of the PEC application.
    type: str
    default: e-SUS-PEC.service
  app_stop_marker:
    description:
      - File recording that this collection stopped the application (who, why, when), written before the stop and
        removed once the application is started again. Read on every run, with or without O(stop_app).
    type: path
    default: /var/lib/sesdf-esus/app-stopped.json
  app_keep_stopped:
    description:
      - The caller needs the application stopped after the backup (e.g. the upgrade role, which stopped it itself);
        the module then never starts it and does not report it as stopped by somebody else.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Verified backup before an upgrade
  sesdf.esus.pec_backup:
    label: pre-upgrade-4.5.2
  register: backup

- name: Backup with a restore test, copied to the mounted share of the IT department
  sesdf.esus.pec_backup:
    label: migracao
    verify_level: restore
    offhost_enabled: true
    offhost_method: mount
    offhost_dest: /mnt/backup-ti/ubs-0010001
"""

RETURN = r"""
backup:
  description: The backup made (or reused).
  returned: always
  type: dict
  contains:
    path: {description: "Final path of the archive.", type: str}
    sha256: {description: "sha256 of the archive.", type: str}
    size_bytes: {description: "Size of the archive.", type: int}
    verified: {description: "Whether verification passed.", type: bool}
    verify_level: {description: "full_read or restore.", type: str}
    manifest: {description: "Path of the JSON manifest.", type: str}
    created_at: {description: "UTC ISO 8601 time of the backup.", type: str}
    duration_s: {description: "Seconds spent.", type: float}
    reused: {description: "An existing recent backup was returned.", type: bool}
    verification: {description: "Verification details (checksum, full read, restore test).", type: dict}
    offhost: {description: "Off-host copy state, path, sha256 (when enabled).", type: dict}
    retention: {description: "Kept and removed archives (when pruning).", type: dict}
app:
  description: What was done to the PEC application.
  returned: always
  type: dict
  contains:
    service: {description: "The application's unit.", type: str}
    marker: {description: "Path of the stop marker.", type: str}
    marker_found: {description: "The marker a killed run left (who, why, when), or null.", type: dict}
    stopped: {description: "This run stopped the application.", type: bool}
    started: {description: "This run started it again (stopped by this run or by a killed one).", type: bool}
    marker_removed: {description: "The marker was removed.", type: bool}
    stopped_by_other: {description: "The application was stopped without a marker: left stopped.", type: bool}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sesdf.esus.plugins.module_utils._paths import APP_STOP_MARKER, BACKUP_DIR, BACKUP_FACT
from ansible_collections.sesdf.esus.plugins.module_utils.pec_app_stop import AppControl
from ansible_collections.sesdf.esus.plugins.module_utils.pec_backup import backup_run
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, pec_argument_spec


def main():
    argument_spec = pec_argument_spec()
    argument_spec.update(
        dest_dir=dict(type="path", default=BACKUP_DIR),
        label=dict(type="str", default="manual"),
        verify_level=dict(type="str", default="full_read", choices=["full_read", "restore"]),
        compress_level=dict(type="int", default=3),
        compress_threads=dict(type="int", default=0),
        zstd_path=dict(type="path"),
        pg_dump_extra_args=dict(type="list", elements="str", default=[]),
        maintenance_db=dict(type="str", default="postgres"),
        reuse_within_minutes=dict(type="int", default=0),
        keep_daily=dict(type="int", default=0),
        keep_weekly=dict(type="int", default=0),
        keep_min=dict(type="int", default=2),
        offhost_enabled=dict(type="bool", default=False),
        offhost_method=dict(type="str", default="mount", choices=["mount", "rsync", "controller"]),
        offhost_dest=dict(type="str"),
        offhost_require_mount=dict(type="bool", default=True),
        offhost_encrypt_recipient=dict(type="str"),
        offhost_ssh_options=dict(type="list", elements="str", default=[]),
        status_path=dict(type="path", default=BACKUP_FACT),
        fail_on_unverified=dict(type="bool", default=True),
        stop_app=dict(type="bool", default=False),
        app_service=dict(type="str", default="e-SUS-PEC.service"),
        app_stop_marker=dict(type="path", default=APP_STOP_MARKER),
        app_keep_stopped=dict(type="bool", default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("offhost_enabled", True, ["offhost_dest"])],
    )
    params = module.params
    app = AppControl(
        params["app_service"],
        params["app_stop_marker"],
        check_mode=module.check_mode,
        keep_stopped=params["app_keep_stopped"],
    )
    result, error = None, None
    try:
        app.take(params["stop_app"], "sesdf.esus.pec_backup", f"backup {params['label']} with the application stopped")
        result, error = backup_run(dict(params), check_mode=module.check_mode)
    except PecError as exc:
        error, details = exc.msg, exc.details
    else:
        details = {"backup": result}
    finally:
        start_error = app.give_back()
    report = dict(app.report)
    app_changed = report.pop("changed")
    if error or start_error:
        module.fail_json(msg="; ".join(e for e in (error, start_error) if e), app=report, **details)
    changed = bool(result.get("changed")) or bool((result.get("offhost") or {}).get("changed"))
    changed = changed or bool((result.get("retention") or {}).get("removed")) or app_changed
    if params["fail_on_unverified"] and not module.check_mode and not result.get("verified"):
        module.fail_json(msg="the backup was not verified; see backup.verification", backup=result, app=report)
    module.exit_json(changed=changed, backup=result, app=report)


if __name__ == "__main__":
    main()
