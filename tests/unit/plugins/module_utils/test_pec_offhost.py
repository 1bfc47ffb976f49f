"""pec_offhost: a copy to a share that was down goes out on the next run, a cut copy resumes, encryption."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from backup_helpers import params

from ansible_collections.sesdf.esus.plugins.module_utils import _fsutil
from ansible_collections.sesdf.esus.plugins.module_utils import pec_archive as pa
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils import pec_offhost as poff


@pytest.mark.nt("NT-inapta-4")
def test_offhost_mount_down_then_back_is_pushed_on_the_next_run(source, tmp_path):
    share = tmp_path / "share"
    p = params(
        source,
        tmp_path / "b",
        offhost_enabled=True,
        offhost_method="mount",
        offhost_dest=str(share),
        offhost_require_mount=False,
    )
    result, error = pb.backup_run(p)
    assert error is None and result["offhost"]["state"] == "failed"
    status = json.loads(open(p["status_path"]).read())
    assert status["offhost"]["state"] == "failed" and status["last_result"] == "ok"
    share.mkdir()
    # next run: the backup itself fails (database down) but the pending copy still goes out
    _result2, error2 = pb.backup_run(dict(p, db_port=1))
    assert error2 is not None
    status = json.loads(open(p["status_path"]).read())
    assert status["offhost"]["state"] == "ok" and status["last_result"] == "failed"
    copy = share / os.path.basename(result["path"])
    assert _fsutil.sha256_file(str(copy)) == result["sha256"]
    assert status["last_success"] == result["created_at"]


def test_offhost_copy_resumes_a_cut_transfer(tmp_path):
    src = tmp_path / "a.pgdump.zst"
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    share = tmp_path / "share"
    share.mkdir()
    (share / (pa.TMP_PREFIX + src.name)).write_bytes(src.read_bytes()[: 1024 * 1024])
    out = poff.push_mount(str(src), _fsutil.sha256_file(str(src)), str(share), require_mount=False)
    assert out["resumed_from"] == 1024 * 1024
    assert (share / src.name).read_bytes() == src.read_bytes()


@pytest.mark.nt("NT-ntinf-2")
@pytest.mark.skipif(not os.path.exists("/usr/bin/age"), reason="age not installed on this machine")
def test_offhost_copy_encrypted_to_a_public_key(source, tmp_path):
    keys = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
    recipient = next(line.split(": ")[1] for line in keys.splitlines() if "public key" in line)
    share = tmp_path / "share"
    share.mkdir()
    p = params(
        source,
        tmp_path / "b",
        offhost_enabled=True,
        offhost_method="mount",
        offhost_dest=str(share),
        offhost_require_mount=False,
        offhost_encrypt_recipient=recipient,
    )
    result, error = pb.backup_run(p)
    assert error is None and result["offhost"]["state"] == "ok"
    copy = share / (os.path.basename(result["path"]) + ".age")
    assert copy.read_bytes()[:21] == b"age-encryption.org/v1"


def test_offhost_copy_cleans_the_partial_a_killed_copy_left_in_the_share(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    killed = share / ".tmp-esus_migracao_20260301T020000Z.pgdump.zst"
    killed_age = share / ".tmp-esus_migracao_20260301T020000Z.pgdump.zst.age"
    concurrent = share / ".tmp-esus_migracao_20260302T010000Z.pgdump.zst"
    foreign = share / ".tmp-relatorio.pdf"
    for path in (killed, killed_age, concurrent, foreign):
        path.write_bytes(b"half")
    for path in (killed, killed_age, foreign):
        then = os.path.getmtime(path) - 7 * 3600
        os.utime(path, (then, then))
    src = tmp_path / "esus_migracao_20260302T020000Z.pgdump.zst"
    src.write_bytes(b"complete archive")
    out = poff.push_mount(str(src), _fsutil.sha256_file(str(src)), str(share), require_mount=False)
    assert sorted(out["removed_temporaries"]) == sorted([str(killed), str(killed_age)])
    assert sorted(os.listdir(share)) == sorted([concurrent.name, foreign.name, src.name, src.name + ".sha256"])
