"""The PEC's client tools are PostgreSQL 9.6's (pec-facts.md, third review): backups, their verification and the
restore drill work with 9.6 semantics. The tools here are the lab's 9.6 shim (tests/pec_double/pg96/pg96-shim) over
the unit tests' PostgreSQL: 9.6's options only, and ``pg_restore -f -`` writes a file named ``-``."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from backup_helpers import params, published

from ansible_collections.sesdf.esus.plugins.module_utils import pec_archive as pa
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

SHIM = os.path.join(os.path.dirname(__file__), "..", "..", "..", "pec_double", "pg96", "pg96-shim")
CLIENT_TOOLS = ("pg_restore", "pg_dump", "psql", "createdb", "dropdb", "vacuumdb")


@pytest.fixture
def pg96(source, tmp_path, monkeypatch):
    """A bin directory like the real PEC's: the 9.6 client tools (shim) and the server's other programs. The tests
    run from a working directory of their own, where a stray file would show."""
    bin_dir = tmp_path / "pg96-bin"
    bin_dir.mkdir()
    for name in os.listdir(source["bin_dir"]):
        target = os.path.abspath(SHIM) if name in CLIENT_TOOLS else os.path.join(source["bin_dir"], name)
        os.symlink(target, bin_dir / name)
    monkeypatch.setenv("PG96_SHIM_REAL_BIN", source["bin_dir"])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return dict(source, bin_dir=str(bin_dir), cwd=cwd)


def _files_under(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _dirs, files in os.walk(path) for f in files)


def test_the_shim_behaves_as_the_9_6_tools_do(pg96, tmp_path):
    """The lab fails where a real server would: the double's own check of the two 9.6 behaviours."""
    archive = pb.run_backup(params(pg96, tmp_path / "dest"))["path"]
    zstd = subprocess.run(["zstd", "-dc", archive], capture_output=True, check=True).stdout
    (tmp_path / "plain.dump").write_bytes(zstd)
    restore = os.path.join(pg96["bin_dir"], "pg_restore")
    proc = subprocess.run([restore, "-f", "-", str(tmp_path / "plain.dump")], capture_output=True, check=False)
    assert proc.returncode == 0 and proc.stdout == b"", "9.6: '-f -' is not stdout"
    assert (pg96["cwd"] / "-").stat().st_size > 0, "9.6: '-f -' writes a file named '-' in the working directory"
    proc = subprocess.run(
        [restore, "--no-comments", "-l", str(tmp_path / "plain.dump")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1 and "unrecognized option '--no-comments'" in proc.stderr
    proc = subprocess.run([restore, str(tmp_path / "plain.dump")], capture_output=True, check=False)
    assert proc.returncode == 0 and b"COPY public.tb_cidadao" in proc.stdout, "9.6: no -f, -d or -l is stdout"


def test_a_verified_backup_on_9_6_tools_leaves_no_file_outside_the_backup_directory_and_has_its_hashes(pg96, tmp_path):
    dest = tmp_path / "dest"
    result = pb.run_backup(params(pg96, dest))
    assert result["verified"] is True
    assert _files_under(pg96["cwd"]) == [], "nothing written in the working directory (no file named '-')"
    assert sorted(published(dest)) == sorted(
        os.path.basename(result["path"]) + suffix for suffix in ("", ".sha256", pa.MANIFEST_SUFFIX)
    ), "only the archive, its checksum and its manifest, and no work directory left behind"
    manifest = json.loads((dest / (os.path.basename(result["path"]) + pa.MANIFEST_SUFFIX)).read_text())
    assert set(manifest["row_hashes"]) == {"public.tb_cidadao", "public.tb_atend", "public.tb_config_sistema"}
    assert all(len(h) == 64 for h in manifest["row_hashes"].values())


def test_the_verification_fails_when_the_script_holds_no_table_data(pg96, tmp_path):
    """An empty set of hashes is not a pass: the pre-12 '-f -' bug gave exactly that."""
    archive = pb.run_backup(params(pg96, tmp_path / "dest"))["path"]
    fake = tmp_path / "pg_restore"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'SET client_encoding = '\"'\"'UTF8'\"'\"';'\n")
    fake.chmod(0o755)
    check = pa.verify_archive(archive, str(fake), pa.find_tool("zstd"), row_hashes=True)
    assert check["ok"] is False and check["row_hashes_ok"] is False
    assert any("held no table data at all" in p for p in check["problems"])


def test_an_option_the_9_6_tool_refuses_fails_the_backup_clearly_and_publishes_nothing(pg96, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(PecError) as err:
        pb.run_backup(params(pg96, dest, pg_dump_extra_args=["--no-comments"]))
    assert "unrecognized option '--no-comments'" in err.value.msg and "nothing was published" in err.value.msg
    assert published(dest) == [] and _files_under(pg96["cwd"]) == []


def test_a_restore_test_on_9_6_tools_restores_the_rows(pg96, tmp_path):
    result = pb.run_backup(params(pg96, tmp_path / "dest", verify_level="restore"))
    assert result["verified"] is True and result["verification"]["restore"]["ok"] is True, result["verification"]
    assert _files_under(pg96["cwd"]) == []
