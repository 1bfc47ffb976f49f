"""pec_archive: verification reads an archive whole and finds every kind of damage; names and formats."""

from __future__ import annotations

import os
import subprocess

import pytest
from backup_helpers import DB, params

from ansible_collections.sesdf.esus.plugins.module_utils import pec_archive as pa
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


@pytest.mark.parametrize("damage", ["truncate", "flip", "wrong_checksum"])
def test_damaged_archives_are_detected(source, tmp_path, damage):
    result = pb.run_backup(params(source, tmp_path))
    path = result["path"]
    data = bytearray(open(path, "rb").read())
    expected = result["sha256"]
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        # every bit of 16 bytes a third of the way in. Not a single bit: some bits of a zstd stream do not change
        # what it decodes to (about 2 % of the single-bit flips near that point decode to the same dump), so such
        # a file holds the same data; only its sha256 differs, and the checksum catches that (asserted above).
        for i in range(len(data) // 3, len(data) // 3 + 16):
            data[i] ^= 0xFF
    else:
        expected = "0" * 64
    open(path, "wb").write(bytes(data))
    check = pa.verify_archive(path, os.path.join(source["bin_dir"], "pg_restore"), pa.find_tool("zstd"), expected)
    assert check["ok"] is False
    assert not check["checksum_ok"]
    if damage != "wrong_checksum":
        # without any recorded checksum the full read alone still catches it
        alone = pa.verify_archive(path, os.path.join(source["bin_dir"], "pg_restore"), pa.find_tool("zstd"))
        assert alone["full_read_ok"] is False and alone["ok"] is False


def test_pg_restore_list_alone_would_pass_a_truncated_plain_dump(source, tmp_path):
    """Why the full read exists (pec-facts.md): --list passes on a dump cut in half; verify_archive fails it."""
    raw = tmp_path / "raw.backup"
    env = dict(os.environ, PGPASSWORD=source["password"])
    subprocess.run(
        [
            f"{source['bin_dir']}/pg_dump",
            "-Fc",
            "-h",
            source["host"],
            "-p",
            str(source["port"]),
            "-U",
            "postgres",
            "-f",
            str(raw),
            DB,
        ],
        check=True,
        env=env,
    )
    data = raw.read_bytes()
    raw.write_bytes(data[: len(data) // 2])
    listing = subprocess.run([f"{source['bin_dir']}/pg_restore", "--list", str(raw)], capture_output=True, check=False)
    assert listing.returncode == 0
    check = pa.verify_archive(str(raw), os.path.join(source["bin_dir"], "pg_restore"))
    assert check["format"] == "custom" and check["full_read_ok"] is False


def test_bad_label_and_unknown_file():
    with pytest.raises(PecError, match="label"):
        pa.validate_label("../etc")
    with pytest.raises(PecError, match="does not exist"):
        pa.sniff_format("/nonexistent/file")
