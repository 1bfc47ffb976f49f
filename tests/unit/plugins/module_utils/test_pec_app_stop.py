"""pec_app_stop: the PEC application stopped by this collection is started again in every path, a killed run too."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_app_stop import AppControl, read_marker
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

UNIT = "e-SUS-PEC.service"


class FakeSystemd:
    """One unit's state and the systemctl calls made on it."""

    def __init__(self, active=True, fail=()):
        self.active = active
        self.calls = []
        self.fail = set(fail)

    def state(self, name):
        assert name == UNIT
        return {"name": name, "active_state": "active" if self.active else "inactive"}

    def run(self, action, name):
        self.calls.append(action)
        if action in self.fail:
            return 1, f"Job for {name} failed"
        self.active = action == "start"
        return 0, ""


def control(tmp_path, systemd, **kw):
    return AppControl(UNIT, str(tmp_path / "state" / "app-stopped.json"), state=systemd.state, run=systemd.run, **kw)


def test_stopped_for_the_run_with_a_marker_then_started_and_the_marker_removed(tmp_path):
    systemd = FakeSystemd(active=True)
    app = control(tmp_path, systemd)
    app.take(True, "sesdf.esus.pec_backup", "backup migracao")
    marker = read_marker(app.marker_path)
    assert systemd.calls == ["stop"] and not systemd.active
    assert marker["service"] == UNIT and marker["reason"] == "backup migracao" and marker["stopped_at"]
    assert marker["stopped_by"] == "sesdf.esus.pec_backup"
    assert oct(os.stat(app.marker_path).st_mode & 0o777) == "0o644"
    assert app.give_back() is None
    assert systemd.calls == ["stop", "start"] and systemd.active and not os.path.exists(app.marker_path)
    assert app.report["stopped"] and app.report["started"] and app.report["changed"]


def test_a_failed_run_still_gives_the_application_back(tmp_path):
    systemd = FakeSystemd(active=True)
    app = control(tmp_path, systemd)
    try:
        app.take(True, "sesdf.esus.pec_backup", "backup")
        raise PecError("pg_dump failed")
    except PecError:
        pass
    finally:
        app.give_back()
    assert systemd.active and not os.path.exists(app.marker_path)


def test_the_run_after_a_killed_one_starts_the_application_and_removes_the_marker(tmp_path):
    systemd = FakeSystemd(active=True)
    killed = control(tmp_path, systemd)
    killed.take(True, "sesdf.esus.pec_backup", "backup")  # ... and the run dies here: no give_back
    assert not systemd.active and os.path.exists(killed.marker_path)
    rerun = control(tmp_path, systemd)
    rerun.take(False, "sesdf.esus.pec_backup", "backup")
    assert rerun.report["marker_found"]["reason"] == "backup"
    assert rerun.give_back() is None
    assert systemd.active and not os.path.exists(rerun.marker_path) and rerun.report["started"]


def test_an_application_stopped_by_somebody_else_is_left_stopped_and_reported(tmp_path):
    systemd = FakeSystemd(active=False)
    app = control(tmp_path, systemd)
    app.take(True, "sesdf.esus.pec_backup", "backup")
    assert app.give_back() is None
    assert systemd.calls == [] and not systemd.active
    assert app.report["stopped_by_other"] and not app.report["changed"]
    assert not os.path.exists(app.marker_path)


def test_a_marker_of_an_application_started_since_is_removed_without_touching_it(tmp_path):
    systemd = FakeSystemd(active=True)
    path = tmp_path / "state" / "app-stopped.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"service": UNIT}))
    app = control(tmp_path, systemd)
    app.take(False, "x", "y")
    app.give_back()
    assert systemd.calls == [] and not path.exists() and app.report["marker_removed"]


def test_a_failed_start_keeps_the_marker_for_the_next_run(tmp_path):
    systemd = FakeSystemd(active=True, fail={"start"})
    app = control(tmp_path, systemd)
    app.take(True, "x", "y")
    error = app.give_back()
    assert "could not start" in error and os.path.exists(app.marker_path) and not app.report["started"]


def test_a_start_refused_by_the_start_limit_is_reset_and_tried_once_more(tmp_path):
    systemd = FakeSystemd(active=True)
    app = control(tmp_path, systemd)
    app.take(True, "x", "y")
    refused = iter([(1, "start of the service was attempted too often")])
    real_run = systemd.run

    def run(action, name):
        if action == "start":
            result = next(refused, None)
            if result:
                systemd.calls.append(action)
                return result
        return real_run(action, name)

    app.run = run
    assert app.give_back() is None
    assert systemd.calls == ["stop", "start", "reset-failed", "start"] and systemd.active
    assert not os.path.exists(app.marker_path)


def test_a_failed_stop_fails_the_run_and_the_give_back_starts_it(tmp_path):
    systemd = FakeSystemd(active=True, fail={"stop"})
    app = control(tmp_path, systemd)
    with pytest.raises(PecError, match="could not stop"):
        app.take(True, "x", "y")
    assert app.give_back() is None and systemd.calls == ["stop", "start"]
    assert not os.path.exists(app.marker_path)


def test_check_mode_reports_and_does_nothing(tmp_path):
    systemd = FakeSystemd(active=True)
    app = control(tmp_path, systemd, check_mode=True)
    app.take(True, "x", "y")
    app.give_back()
    assert systemd.calls == [] and app.report["stopped"] and not os.path.exists(app.marker_path)


def test_keep_stopped_neither_starts_nor_reports_an_application_the_caller_stopped(tmp_path):
    systemd = FakeSystemd(active=False)
    path = tmp_path / "state" / "app-stopped.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"service": UNIT}))
    app = control(tmp_path, systemd, keep_stopped=True)
    app.take(False, "x", "y")
    assert app.give_back() is None
    assert systemd.calls == [] and path.exists() and not app.report["stopped_by_other"]


def test_an_unreadable_marker_is_still_a_marker(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{not json")
    assert "unreadable" in read_marker(str(path))
    assert read_marker(str(tmp_path / "absent.json")) is None
