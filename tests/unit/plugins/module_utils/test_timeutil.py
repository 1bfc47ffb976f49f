"""_timeutil: one parser for the ISO 8601 and PostgreSQL time stamps the fact files and the database hold."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, iso_offset, parse_iso, parse_ts

UTC = datetime.UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-12T02:00:00Z",
        "2026-03-12T02:00:00+00:00",
        "2026-03-12 02:00:00",
        "2026-03-12T02:00:00",
        "2026-03-11T23:00:00-03:00",
    ],
)
def test_iso_and_postgresql_text_parse_to_the_same_utc_instant(text):
    assert parse_iso(text) == datetime.datetime(2026, 3, 12, 2, 0, 0, tzinfo=UTC)


def test_formats_round_trip():
    when = datetime.datetime(2026, 3, 12, 2, 0, 0, tzinfo=UTC)
    assert iso(when) == "2026-03-12T02:00:00Z" and parse_iso(iso(when)) == when
    assert iso_offset(when) == "2026-03-12T02:00:00+00:00"
    assert iso(None) is None and iso_offset(None) is None


def test_bad_text_raises_for_parse_iso_and_is_none_for_parse_ts():
    with pytest.raises(ValueError):
        parse_iso("ontem")
    assert parse_ts("ontem") is None and parse_ts(None) is None and parse_iso("") is None
