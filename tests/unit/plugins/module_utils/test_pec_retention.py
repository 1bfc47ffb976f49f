"""pec_retention: daily and weekly copies are kept, never fewer than two, never the newest."""

from __future__ import annotations

import datetime
import os

from backup_helpers import DB, params

from ansible_collections.sesdf.esus.plugins.module_utils import pec_archive as pa
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils import pec_retention as pret


def _entry(day, hour=2):
    return {
        "path": f"/b/{day}-{hour}",
        "verified": True,
        "created_at": datetime.datetime(2026, 1, 1, hour, tzinfo=datetime.UTC) + datetime.timedelta(days=day),
    }


def test_retention_over_40_days_keeps_daily_weekly_and_newest():
    backups = []
    for day in range(40):
        backups.insert(0, _entry(day))
        keep, _delete = pret.plan_retention(backups, daily=7, weekly=4)
        assert backups[0] in keep
        assert len(keep) >= min(2, len(backups))
        backups = [b for b in backups if b in keep]
    days = sorted({b["created_at"].date() for b in backups})
    assert len(days) <= 7 + 4
    assert days[-7:] == [
        d.date() for d in (backups[0]["created_at"] - datetime.timedelta(days=i) for i in range(6, -1, -1))
    ]
    assert (days[-1] - days[0]).days >= 21  # weekly copies reach back ~4 weeks


def test_retention_never_below_two_and_never_the_newest():
    backups = [_entry(3), _entry(2), _entry(1)]
    keep, delete = pret.plan_retention(backups, daily=0, weekly=0)
    assert [b["path"] for b in keep] == ["/b/3-2", "/b/2-2"]
    assert [b["path"] for b in delete] == ["/b/1-2"]


def test_retention_with_real_runs_over_simulated_days(source, tmp_path):
    base = datetime.datetime(2026, 3, 1, 2, tzinfo=datetime.UTC)
    p = params(source, tmp_path, keep_daily=3, keep_weekly=2)
    for day in range(12):
        _result, error = pb.backup_run(p, now=base + datetime.timedelta(days=day))
        assert error is None
    names = [os.path.basename(b["path"]) for b in pa.list_backups(str(tmp_path), label="unit")]
    assert len(names) <= 5 and names[0].startswith(f"{DB}_unit_20260312")
    for b in pa.list_backups(str(tmp_path)):
        assert os.path.exists(b["path"] + ".sha256") and os.path.exists(b["path"] + ".manifest.json")
