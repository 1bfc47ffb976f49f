# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention of published backups: which to keep (daily, weekly, never below a minimum), and the deletion."""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import fsync_dir, unlink_quiet
from ansible_collections.sesdf.esus.plugins.module_utils.pec_archive import MANIFEST_SUFFIX, SHA_SUFFIX, list_backups


def plan_retention(backups, daily, weekly, min_keep=2):
    """Which backups to delete. backups: list_backups() entries (one label). Returns (keep, delete) lists.

    Keeps the newest verified backup of each of the last ``daily`` days that have one, then, among older
    days, the newest of each of ``weekly`` ISO weeks (weekly copies extend the history beyond the daily
    ones); the newest verified backup is always kept and never fewer than ``min_keep``.
    Unverified entries are never counted as keepers and never deleted here (they cannot exist published).
    """
    verified = sorted([b for b in backups if b["verified"]], key=lambda b: b["created_at"], reverse=True)
    keep = []
    days, weeks = [], []
    for b in verified:
        day = b["created_at"].date()
        if day not in days and len(days) < daily:
            days.append(day)
            keep.append(b)
    for b in verified:
        week = tuple(b["created_at"].isocalendar()[:2])
        if b in keep or week in weeks or b["created_at"].date() in days:
            continue
        if len(weeks) < weekly:
            weeks.append(week)
            keep.append(b)
    if verified and verified[0] not in keep:
        keep.insert(0, verified[0])
    for b in verified:
        if len(keep) >= min_keep:
            break
        if b not in keep:
            keep.append(b)
    delete = [b for b in verified if b not in keep]
    return keep, delete


def apply_retention(directory, label, daily, weekly, min_keep=2, check_mode=False):
    keep, delete = plan_retention(list_backups(directory, label=label), daily, weekly, min_keep)
    removed = []
    for b in delete:
        removed.append(b["path"])
        if not check_mode:
            for suffix in ("", SHA_SUFFIX, MANIFEST_SUFFIX):
                unlink_quiet(b["path"] + suffix)
    if removed and not check_mode:
        fsync_dir(directory)
    return {"kept": [b["path"] for b in keep], "removed": removed}
