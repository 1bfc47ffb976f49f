# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's own paths on a server, defined once for the modules and module_utils (standard library only).

The roles have the same roots as the variables ``sesdf_esus_facts_dir``, ``sesdf_esus_state_dir``,
``sesdf_esus_config_dir``, ``sesdf_esus_backup_dir`` and ``sesdf_esus_lib_dir`` (``roles/pec_facts/defaults``).
A module's DOCUMENTATION keeps the literal default text; ``tests/unit/plugins/test_paths.py`` checks it equals the
default the module really uses. The PEC's own paths are not here (doc fragment ``sesdf.esus.pec``).
"""

from __future__ import annotations

# Ansible's local facts: the state files the modules and jobs write for the report (root-only).
FACTS_DIR = "/etc/ansible/facts.d"
# The collection's state on the server (ledgers, caches, snapshots, markers).
STATE_DIR = "/var/lib/sesdf-esus"
# The server programs' configuration (root-only).
CONFIG_DIR = "/etc/sesdf-esus"
# The local backups of the PEC database.
BACKUP_DIR = "/var/backups/esus"

# Files and directories more than one module or program names.
BACKUP_FACT = FACTS_DIR + "/sesdf_esus_backup.fact"
BACKUP_CHECK_CACHE = STATE_DIR + "/backup-check.json"
REBUILD_WORK_DIR = BACKUP_DIR + "/reconstrucao"
APP_STOP_MARKER = STATE_DIR + "/app-stopped.json"
LOTES_STATE_DIR = STATE_DIR + "/lotes"
LOTES_INBOX = LOTES_STATE_DIR + "/entrada"
LOTES_LEDGER = LOTES_STATE_DIR + "/ledger.json"
PROFILE_SNAPSHOTS_DIR = STATE_DIR + "/profile-snapshots"
UPGRADE_KEEP_ASIDE_DIR = BACKUP_DIR + "/upgrade"
# The UBS's borg base directory (cache and security directory of its repository).
BORG_BASE_DIR = STATE_DIR + "/borg"
