# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the server-side programs (``cli_main`` of pec_backup and lotes, run by cron/systemd on servers
without Ansible) share: reading their JSON config, logging under a tag, exit codes, the status file.

Standard library only: these files are copied onto servers that have no Ansible.
"""

from __future__ import annotations

import json
import os
import sys

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import write_json
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import local_now_iso
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


class JobLog:
    """``log(message, priority)``: a line on stderr and, with ``journal``, in syslog/the journal under ``tag``.

    ``timestamps`` prefixes the stderr line with the local time (for jobs whose stderr goes to a log file).
    """

    def __init__(self, tag, journal=True, timestamps=False):
        self.tag = tag
        self.journal = journal
        self.timestamps = timestamps

    def __call__(self, message, priority="info"):
        prefix = f"{local_now_iso()} " if self.timestamps else ""
        sys.stderr.write(prefix + message + "\n")
        if not self.journal:
            return
        try:
            import syslog

            syslog.openlog(self.tag, 0, syslog.LOG_DAEMON)
            syslog.syslog(getattr(syslog, "LOG_" + priority.upper(), syslog.LOG_INFO), message)
        except Exception as exc:
            sys.stderr.write(f"(syslog unavailable: {exc})\n")


class ConfigError(Exception):
    """The job's config file cannot be read: ``path`` and ``reason`` (str(error) is the reason)."""

    def __init__(self, path, reason):
        super().__init__(reason)
        self.path = path
        self.reason = reason


def read_config(path):
    """The job's JSON config (a dict). Raises ConfigError naming the file when it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(path, exc) from exc
    if not isinstance(data, dict):
        raise ConfigError(path, "not a JSON object")
    return data


def write_status(path, document, mode=0o644, create_dir=False):
    """Write the job's status file (JSON, atomic). Raises PecError when it cannot be written."""
    if create_dir:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    write_json(path, document, mode=mode)


def write_status_quiet(path, document, mode=0o644):
    """Like write_status, but a status file that cannot be written does not fail the job."""
    try:
        write_status(path, document, mode)
    except PecError:
        return False
    return True
