# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PEC application stopped by this collection, and brought back.

Before stopping the application (e.g. for a backup with the application stopped) the collection writes a marker
on the server (``/var/lib/sesdf-esus/app-stopped.json``: which unit, who stopped it, why, when), atomically; it
starts the application again at the end of the run, whatever the outcome, and removes the marker. A run killed
in between leaves the marker: the next run that takes the application (any backup run) sees it, starts the
application and removes it. A stopped application without the marker was stopped by somebody else: it is left
as it is and reported (``stopped_by_other``). A caller whose next step needs the application stopped (the upgrade
role, which stopped it itself) passes ``keep_stopped``: the application is then neither started nor reported.
"""

from __future__ import annotations

import os
import socket

from ansible_collections.sesdf.esus.plugins.module_utils import _paths
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json, unlink_quiet, write_json
from ansible_collections.sesdf.esus.plugins.module_utils._runner import Runner
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import service_state

DEFAULT_MARKER = _paths.APP_STOP_MARKER


def systemctl(action, unit):
    """``systemctl <action> <unit>``: (rc, stderr). The default command runner of AppControl."""
    result = Runner().run(["systemctl", action, unit], timeout=300, changes=action in ("start", "stop", "restart"))
    if result.rc is None:
        return 1, result.why()
    return result.rc, (result.stderr or "").strip()


def read_marker(path):
    """The marker as a dict, None when absent; an unreadable marker is still a marker (``{"unreadable": ...}``)."""
    try:
        data = read_json(path, "application stop marker", missing=None)
    except PecError as exc:
        return {"unreadable": exc.msg}
    if data is None:
        return None
    return data if isinstance(data, dict) else {"unreadable": f"{path} does not hold a JSON object"}


def write_marker(path, service, stopped_by, reason, now=None):
    """Record that this collection stops ``service`` (atomic write, world-readable, no secret in it)."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    marker = {
        "service": service,
        "stopped_by": stopped_by,
        "reason": reason,
        "stopped_at": iso(now or utcnow()),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    write_json(path, marker, mode=0o644)
    return marker


class AppControl:
    """Take the application for a run (``take``) and give it back (``give_back``); see the module docstring.

    ``state(unit) -> {active_state, ...}`` and ``run(action, unit) -> (rc, stderr)`` are the probes (faked in tests).
    """

    def __init__(
        self,
        service,
        marker_path=DEFAULT_MARKER,
        state=service_state,
        run=systemctl,
        check_mode=False,
        keep_stopped=False,
    ):
        self.service = service
        self.keep_stopped = keep_stopped
        self.marker_path = marker_path
        self.state = state
        self.run = run
        self.check_mode = check_mode
        self.owned = False
        self.report = {
            "service": service,
            "marker": marker_path,
            "marker_found": None,
            "stopped": False,
            "started": False,
            "marker_removed": False,
            "stopped_by_other": False,
            "changed": False,
        }

    def _active(self):
        return self.state(self.service).get("active_state") == "active"

    def take(self, stop, stopped_by, reason):
        """Before the run: adopt a marker a killed run left, and stop the application when ``stop``."""
        marker = read_marker(self.marker_path)
        active = self._active()
        self.report["marker_found"] = marker
        if self.keep_stopped:
            pass  # the caller needs it stopped after the run: a marker stays for whoever starts it
        elif marker and active:  # somebody started it since: the marker is out of date
            self._remove_marker()
        elif marker:
            self.owned = True  # stopped by a run of ours that did not finish: ours to start again
        elif not active:
            self.report["stopped_by_other"] = True  # left as it is
        if stop and active:
            self.report["stopped"] = True
            self.report["changed"] = True
            if self.check_mode:
                return self.report
            write_marker(self.marker_path, self.service, stopped_by, reason)
            self.owned = not self.keep_stopped
            rc, err = self.run("stop", self.service)
            if rc != 0:
                raise PecError(f"could not stop {self.service} ({err or 'rc=' + str(rc)}); nothing was done")
        return self.report

    def give_back(self):
        """After the run (every path): start the application when this collection stopped it. Returns an error
        message (the marker is then kept, so the next run tries again) or None."""
        if not self.owned:
            return None
        self.report["changed"] = True
        self.report["started"] = True
        if self.check_mode:
            return None
        rc, err = self.run("start", self.service)
        if rc != 0:
            # systemd refuses a unit started too often in a short time (start-limit-hit) until its failed state
            # is reset: the unit was stopped by this collection, so clear that state once and try again.
            self.run("reset-failed", self.service)
            rc, err = self.run("start", self.service)
        if rc != 0:
            self.report["started"] = False
            return (
                f"could not start {self.service} again ({err or 'rc=' + str(rc)}); the marker {self.marker_path} "
                f"is kept so the next run tries again; see: journalctl -u {self.service}"
            )
        self._remove_marker()
        self.owned = False
        return None

    def _remove_marker(self):
        self.report["marker_removed"] = True
        self.report["changed"] = True
        if not self.check_mode:
            unlink_quiet(self.marker_path)
