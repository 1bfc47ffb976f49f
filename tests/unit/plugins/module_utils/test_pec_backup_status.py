"""pec_backup_status: the status fact file, and the re-check of what it claims against the archive on disk."""

from __future__ import annotations

import datetime
import hashlib
import json
import os

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso
from ansible_collections.sesdf.esus.plugins.module_utils.pec_backup_status import recheck_status, write_status

BACKED_UP = datetime.datetime(2026, 3, 1, 2, 0, tzinfo=datetime.UTC)


def hours_later(hours):
    return BACKED_UP + datetime.timedelta(hours=hours)


@pytest.fixture
def backup(tmp_path):
    """A published archive with its manifest, and the status a successful backup wrote about it."""
    archive = tmp_path / "esus_diario_20260301T020000Z.pgdump.zst"
    archive.write_bytes(os.urandom(64 * 1024))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    manifest = {"sha256": digest, "size_bytes": archive.stat().st_size, "mtime_ns": archive.stat().st_mtime_ns}
    (tmp_path / (archive.name + ".manifest.json")).write_text(json.dumps(manifest))
    result = {
        "path": str(archive),
        "created_at": iso(BACKED_UP),
        "size_bytes": manifest["size_bytes"],
        "sha256": digest,
        "verified": True,
        "verify_level": "full_read",
    }
    status = write_status(str(tmp_path / "status.json"), BACKED_UP, result)
    return archive, status, str(tmp_path / "cache" / "check.json")


def counting_hasher():
    calls = []

    def hasher(path):
        calls.append(path)
        return hashlib.sha256(open(path, "rb").read()).hexdigest()

    return hasher, calls


def test_an_intact_backup_is_verified_without_hashing_within_the_cadence(backup):
    _archive, status, cache = backup
    hasher, calls = counting_hasher()
    out = recheck_status(status, now=hours_later(3), cache_path=cache, hasher=hasher)
    assert out["verified"] is True and out["check"] == "ok"
    assert out["verified_at"] == iso(BACKED_UP) and out["checked_at"] == iso(hours_later(3))
    assert calls == []


def test_a_truncated_archive_is_a_mismatch_at_once(backup):
    archive, status, cache = backup
    with open(archive, "r+b") as handle:
        handle.truncate(1000)
    out = recheck_status(status, now=hours_later(1), cache_path=cache)
    assert out["verified"] is False and out["check"] == "mismatch"
    assert "1000 bytes" in out["check_detail"]


def test_flipped_bytes_with_the_mtime_touched_back_are_caught_by_the_periodic_full_check(backup):
    archive, status, cache = backup
    before = archive.stat()
    data = bytearray(archive.read_bytes())
    data[100:108] = bytes(b ^ 0xFF for b in data[100:108])
    archive.write_bytes(bytes(data))
    os.utime(archive, ns=(before.st_atime_ns, before.st_mtime_ns))
    hasher, calls = counting_hasher()
    soon = recheck_status(status, now=hours_later(2), cache_path=cache, hasher=hasher)
    assert soon["check"] == "ok" and calls == []  # the cheap check cannot see it: the cadence exists for that
    late = recheck_status(status, now=hours_later(25), cache_path=cache, hasher=hasher)
    assert late["verified"] is False and late["check"] == "mismatch" and calls == [str(archive)]
    again = recheck_status(status, now=hours_later(26), cache_path=cache, hasher=hasher)
    assert again["check"] == "mismatch" and len(calls) == 1  # remembered, not hashed again


def test_a_changed_mtime_triggers_the_full_check_before_the_cadence(backup):
    archive, status, cache = backup
    data = bytearray(archive.read_bytes())
    data[0] ^= 0xFF
    archive.write_bytes(bytes(data))
    hasher, calls = counting_hasher()
    out = recheck_status(status, now=hours_later(1), cache_path=cache, hasher=hasher)
    assert out["check"] == "mismatch" and calls == [str(archive)]


def test_the_full_check_is_recorded_so_the_next_read_does_not_hash(backup):
    archive, status, cache = backup
    hasher, calls = counting_hasher()
    first = recheck_status(status, now=hours_later(30), cache_path=cache, hasher=hasher)
    second = recheck_status(status, now=hours_later(31), cache_path=cache, hasher=hasher)
    assert first["check"] == second["check"] == "ok" and len(calls) == 1
    assert second["verified_at"] == iso(hours_later(30)) == second["full_check_at"]
    assert json.loads(open(cache).read())["path"] == str(archive)


def test_zero_hours_hashes_on_every_read(backup):
    _archive, status, cache = backup
    hasher, calls = counting_hasher()
    recheck_status(status, now=hours_later(1), cache_path=cache, full_every_hours=0, hasher=hasher)
    recheck_status(status, now=hours_later(1), cache_path=cache, full_every_hours=0, hasher=hasher)
    assert len(calls) == 2


def test_an_archive_whose_manifest_was_deleted_is_unverified(backup):
    archive, status, cache = backup
    os.unlink(str(archive) + ".manifest.json")
    out = recheck_status(status, now=hours_later(1), cache_path=cache)
    assert out["verified"] is False and out["check"] == "missing_manifest"


def test_a_deleted_archive_is_reported_missing(backup):
    archive, status, cache = backup
    os.unlink(archive)
    out = recheck_status(status, now=hours_later(1), cache_path=cache)
    assert out["verified"] is False and out["check"] == "missing_archive"


def test_a_status_without_backup_claims_nothing(tmp_path):
    status = write_status(str(tmp_path / "status.json"), BACKED_UP, None, error="pg_dump failed")
    out = recheck_status(status, now=hours_later(1), cache_path=str(tmp_path / "c.json"))
    assert out["verified"] is False and out["check"] is None


def test_a_new_backup_makes_it_fine_again(backup, tmp_path):
    archive, status, cache = backup
    os.unlink(str(archive) + ".manifest.json")
    assert recheck_status(status, now=hours_later(1), cache_path=cache)["check"] == "missing_manifest"
    newer = tmp_path / "esus_diario_20260302T020000Z.pgdump.zst"
    newer.write_bytes(b"new archive")
    digest = hashlib.sha256(b"new archive").hexdigest()
    meta = {"sha256": digest, "size_bytes": 11, "mtime_ns": newer.stat().st_mtime_ns}
    (tmp_path / (newer.name + ".manifest.json")).write_text(json.dumps(meta))
    result = {"path": str(newer), "created_at": iso(hours_later(24)), "size_bytes": 11, "sha256": digest}
    status = write_status(str(tmp_path / "status.json"), hours_later(24), dict(result, verified=True, verify_level="x"))
    out = recheck_status(status, now=hours_later(25), cache_path=cache)
    assert out["verified"] is True and out["check"] == "ok" and out["verified_at"] == iso(hours_later(24))
