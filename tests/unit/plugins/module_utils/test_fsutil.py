"""Durable atomic writes, checksums and JSON reads: the one file helper every module and job uses."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import _fsutil
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


def test_atomic_write_replaces_with_mode_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "status.json"
    target.write_text("old")
    _fsutil.atomic_write(str(target), "novo conteúdo", mode=0o640)
    assert target.read_text(encoding="utf-8") == "novo conteúdo"
    assert os.stat(target).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]


def test_atomic_write_failure_keeps_the_old_file_and_says_what_to_do(tmp_path, monkeypatch):
    target = tmp_path / "ledger.json"
    target.write_bytes(b"antigo")

    def full_disk(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_fsutil.os, "replace", full_disk)
    with pytest.raises(PecError, match="free space on that file system"):
        _fsutil.atomic_write(str(target), b"novo")
    assert target.read_bytes() == b"antigo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.json"]


def test_atomic_write_into_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(PecError, match="cannot write .*check the directory"):
        _fsutil.atomic_write(str(tmp_path / "nao-existe" / "x.json"), b"{}")


def test_sha256_file_reads_in_chunks(tmp_path):
    data = os.urandom(3 * 1024 + 7)
    path = tmp_path / "a.bin"
    path.write_bytes(data)
    assert _fsutil.sha256_file(str(path), chunk=1024) == hashlib.sha256(data).hexdigest()


def test_read_json_missing_default_and_damaged_file(tmp_path):
    assert _fsutil.read_json(str(tmp_path / "none.json"), "ledger", missing={}) == {}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PecError, match="lotes ledger .* do not delete it"):
        _fsutil.read_json(str(bad), "lotes ledger")


def test_write_json_round_trip(tmp_path):
    path = str(tmp_path / "doc.json")
    _fsutil.write_json(path, {"b": 1, "a": "ç"})
    assert _fsutil.read_json(path) == {"a": "ç", "b": 1}
