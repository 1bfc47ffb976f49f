"""pec_restore against a real PostgreSQL: a round trip restores equal rows; over the live database, a swap
only after a full restore."""

from __future__ import annotations

import json
import os

import pytest
from backup_helpers import DB, params, table_fingerprint

from ansible_collections.sesdf.esus.plugins.module_utils import _fsutil
from ansible_collections.sesdf.esus.plugins.module_utils import pec_archive as pa
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils import pec_restore as pres
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


@pytest.mark.nt("NT-ntinf-3")
def test_round_trip_restores_equal_rows_and_hashes(source, tmp_path):
    result = pb.run_backup(params(source, tmp_path / "b", verify_level="restore"))
    assert result["verified"] and result["changed"]
    path = result["path"]
    assert os.path.basename(path).startswith(f"{DB}_unit_") and path.endswith(".pgdump.zst")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(tmp_path / "b").st_mode & 0o777) == "0o700"
    assert pa.read_sha_sidecar(path) == result["sha256"] == _fsutil.sha256_file(path)
    manifest = json.loads(open(result["manifest"]).read())
    assert manifest["verified"] is True and manifest["verify_level"] == "restore"
    assert manifest["verification"]["restore"]["mismatches"] == {}
    restored = pres.run_restore(params(source, tmp_path / "b", path=path, target_db="esus_roundtrip"))
    assert restored["changed"] and restored["target_db"] == "esus_roundtrip"
    assert table_fingerprint(source, "esus_roundtrip") == table_fingerprint(source, DB)


def test_restore_over_live_database_swaps_only_after_full_restore(source, tmp_path):
    result = pb.run_backup(params(source, tmp_path))
    p = params(source, tmp_path, path=result["path"], db_name="esus_swap", require_app_stopped=False)
    pres.run_restore(dict(p, target_db="esus_swap"))  # make a live "esus_swap" to replace
    before = table_fingerprint(source, "esus_swap")
    check = pres.run_restore(p, check_mode=True)
    assert check["changed"] and "swap" in check["would"]
    out = pres.run_restore(dict(p, keep_previous=True))
    assert out["swapped"] and out["previous_db"].startswith("esus_swap_pre_restore_")
    assert table_fingerprint(source, "esus_swap") == before
    # a damaged archive is refused before anything is touched
    bad = tmp_path / "bad.pgdump.zst"
    data = bytearray(open(result["path"], "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(PecError, match="checksum mismatch"):
        pres.run_restore(dict(p, path=str(bad), sha256=result["sha256"]))
    assert table_fingerprint(source, "esus_swap") == before
