"""_transfer: a delivery lands complete under its final name, resumes a cut copy, and every remote path is
quoted for the remote shell (a destination directory with a space and a ';' is safe)."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import _transfer
from ansible_collections.sesdf.esus.plugins.module_utils._runner import Result, Runner
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_offhost import push_rsync


class FakeHost:
    """ssh and rsync at the runner level: the 'remote' server is this machine.

    ssh runs its remote command string with ``sh -c`` (as sshd does), so an unquoted path would split or
    run its ``;``; rsync copies to the path after ``host:``. Every argv is recorded.
    """

    def __init__(self, cwd):
        self.calls = []
        self.cwd = cwd

    def __call__(self, argv, timeout):
        self.calls.append(list(argv))
        if argv[0] == "ssh":
            return Runner().run(["sh", "-c", argv[-1]], timeout=timeout, cwd=self.cwd)
        _host, _sep, remote = argv[-1].partition(":")  # rsync ... SRC HOST:PATH
        shutil.copyfile(argv[-2], remote)
        return Result(argv, 0, "", "")


@pytest.fixture
def hostile_dir(tmp_path):
    path = tmp_path / "NCAIS share; touch INJECTED"
    path.mkdir()
    return path


def test_rsync_destination_quotes_the_remote_path_and_the_file_lands_there(tmp_path, hostile_dir):
    src = tmp_path / "lote-1.zip"
    src.write_bytes(b"lote bytes")
    digest = hashlib.sha256(b"lote bytes").hexdigest()
    host = FakeHost(cwd=str(tmp_path))
    dest = _transfer.RsyncDestination("ncais", str(hostile_dir), user="esus", runner=host)
    dest.check()
    dest.put(str(src), "lote-1.zip", expected_sha256=digest)
    assert (hostile_dir / "lote-1.zip").read_bytes() == b"lote bytes"
    assert (hostile_dir / "lote-1.zip.sha256").read_text() == f"{digest}  lote-1.zip\n"
    assert dest.remote_sha256("lote-1.zip") == digest
    assert dest.remote_sha256("absent.zip") is None
    assert not (tmp_path / "INJECTED").exists()
    remote_cmds = [c[-1] for c in host.calls if c[0] == "ssh"]
    assert remote_cmds and all("'" + str(hostile_dir) in cmd for cmd in remote_cmds)
    rsync = next(c for c in host.calls if c[0] != "ssh")
    assert rsync[-1] == f"esus@ncais:{hostile_dir}/lote-1.zip"


def test_backup_push_over_rsync_quotes_the_remote_path(tmp_path, hostile_dir):
    src = tmp_path / "esus_daily_20260312T020000Z.pgdump.zst"
    src.write_bytes(os.urandom(4096))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    host = FakeHost(cwd=str(tmp_path))
    out = push_rsync(str(src), digest, f"backup@cofre:{hostile_dir}", rsync_path=shutil.which("true"), runner=host)
    assert out["path"] == f"backup@cofre:{hostile_dir}/{src.name}"
    assert (hostile_dir / src.name).read_bytes() == src.read_bytes()
    assert (hostile_dir / (src.name + ".sha256")).read_text().split()[0] == digest
    assert not (tmp_path / "INJECTED").exists()
    ssh = [c for c in host.calls if c[0] == "ssh"]
    assert all(c[:5] == ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"] for c in ssh)


def test_rsync_arrival_with_another_checksum_is_not_delivered(tmp_path, hostile_dir):
    src = tmp_path / "a.zip"
    src.write_bytes(b"a")
    dest = _transfer.RsyncDestination("h", str(hostile_dir), runner=FakeHost(cwd=str(tmp_path)))
    with pytest.raises(PecError, match="expected " + "0" * 64):
        dest.put(str(src), "a.zip", expected_sha256="0" * 64)
    assert not (hostile_dir / "a.zip.sha256").exists()


def test_rsync_target_must_name_a_directory():
    with pytest.raises(PecError, match="user@host:/directory"):
        _transfer.RsyncDestination.from_target("host-only")


def test_path_destination_publishes_only_complete_files(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 5000)
    dest = _transfer.PathDestination(str(share))
    assert dest.problem() is None
    dest.put(str(src), "f.bin")
    assert sorted(os.listdir(share)) == ["f.bin"]
    assert dest.remote_sha256("f.bin") == hashlib.sha256(b"x" * 5000).hexdigest()
    assert _transfer.PathDestination(str(tmp_path / "absent")).problem() == _transfer.MISSING
    assert _transfer.PathDestination(str(share), require_mount=True).problem() == _transfer.NOT_MOUNTED


def test_resumable_copy_appends_from_the_partial_and_checks_the_sum(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    src = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024)
    src.write_bytes(data)
    (share / ".tmp-big.bin").write_bytes(data[: 1024 * 1024])
    dest = _transfer.PathDestination(str(share), partial=".tmp-{name}", resume=True)
    offset = dest.put(str(src), "big.bin", expected_sha256=hashlib.sha256(data).hexdigest())
    assert offset == 1024 * 1024 and (share / "big.bin").read_bytes() == data
    assert (share / "big.bin.sha256").exists() and not (share / ".tmp-big.bin").exists()


def _old(path, hours=7):
    then = os.path.getmtime(path) - hours * 3600
    os.utime(path, (then, then))


def test_a_copy_removes_stale_partials_of_ours_and_keeps_foreign_and_fresh_files(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    stale = share / ".f-1.bin.part"  # a copy of f-1.bin killed half-way, hours ago
    stale_sidecar = share / ".f-1.bin.sha256.k3j2_x9a.tmp"
    fresh = share / ".f-2.bin.part"  # a concurrent copy still writing
    foreign = [share / ".f-1.bin.part.keep", share / ".notes.part", share / "f-1.bin.part"]
    for path in [stale, stale_sidecar, fresh, *foreign]:
        path.write_bytes(b"partial")
    for path in [stale, stale_sidecar, *foreign]:
        _old(path)
    src = tmp_path / "f-3.bin"
    src.write_bytes(b"x" * 100)
    dest = _transfer.PathDestination(str(share), ours=r"f-[0-9]+\.bin")
    dest.put(str(src), "f-3.bin", expected_sha256=hashlib.sha256(b"x" * 100).hexdigest())
    left = sorted(os.listdir(share))
    assert stale.name not in left and stale_sidecar.name not in left
    assert {fresh.name, "f-3.bin", "f-3.bin.sha256", *(p.name for p in foreign)} == set(left)
    assert sorted(dest.removed_stale) == sorted([str(stale), str(stale_sidecar)])


def test_the_partial_of_the_file_being_resumed_is_kept_however_old(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    src = tmp_path / "f-1.bin"
    src.write_bytes(b"abcdef" * 1000)
    partial = share / ".f-1.bin.part"
    partial.write_bytes(b"abcdef" * 10)
    _old(partial, hours=48)
    dest = _transfer.PathDestination(str(share), resume=True, ours=r"f-[0-9]+\.bin")
    assert dest.put(str(src), "f-1.bin") == 60
    assert os.listdir(share) == ["f-1.bin"]


def test_without_ours_nothing_is_cleaned(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / ".f-1.bin.part").write_bytes(b"p")
    _old(share / ".f-1.bin.part")
    src = tmp_path / "f-2.bin"
    src.write_bytes(b"x")
    _transfer.PathDestination(str(share)).put(str(src), "f-2.bin")
    assert sorted(os.listdir(share)) == [".f-1.bin.part", "f-2.bin"]
