# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time stamps: the one parser and formatters of the instants modules, jobs and fact files exchange.

Accepted input: ISO 8601 (``2026-03-12T02:00:00Z``, ``...+00:00``, naive) and PostgreSQL text
(``2026-03-12 02:00:00``, ``2026-03-12 02:00:00+00``). A naive value is taken as UTC.
"""

from __future__ import annotations

import calendar
import datetime


def utcnow():
    """Now, in UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def local_now_iso():
    """Now, local wall-clock time to the second, ISO 8601 without offset (the lotes ledger's stamps)."""
    return datetime.datetime.now().replace(microsecond=0).isoformat()


def iso(dt):
    """``2026-03-12T02:00:00Z`` (the backup status and manifests); None for None."""
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def iso_offset(dt):
    """``2026-03-12T02:00:00+00:00`` (isoformat to the second); None for None."""
    return dt.isoformat(timespec="seconds") if dt else None


def parse_iso(text):
    """ISO 8601 or PostgreSQL timestamp text -> aware UTC datetime; None for empty. Raises ValueError otherwise."""
    if not text:
        return None
    value = str(text).strip().replace(" ", "T", 1)
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)


def parse_ts(text):
    """Like :func:`parse_iso`, but None for text that is not a time stamp (never raises)."""
    try:
        return parse_iso(text)
    except ValueError:
        return None


def next_month(first):
    """The first day of the month after ``first``'s."""
    return datetime.date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def cds_deadline(month_first, deadline_day=10):
    """The CDS deadline of a month's production: day ``deadline_day`` of the next month (its last day when shorter)."""
    nxt = next_month(month_first)
    return nxt.replace(day=min(deadline_day, calendar.monthrange(nxt.year, nxt.month)[1]))
