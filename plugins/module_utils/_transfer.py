# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Delivery of a file to another place: a directory (a mounted share) or a directory over rsync/SSH.

The one implementation behind the lotes transfer to NCAIS and the off-host copy of the backups. A file
arrives under a hidden partial name and is renamed to its final name only when complete (and, when an
expected sha256 is given, only when the bytes that arrived have it). Remote paths are always quoted for
the remote shell: a destination directory may hold spaces or shell metacharacters.

A copy killed half-way leaves its partial behind; a later run of another file never resumes it. A
PathDestination told which final names are this collection's (``ours``, a regular expression) removes, before
and after each copy, the partials of those names (and the temporaries of their ``.sha256`` sidecars) that
nothing wrote for ``stale_after_s`` seconds: a foreign file, or a fresh partial of a concurrent copy, is kept.

Commands run through a runner (``runner(argv, timeout) -> _runner.Result`` with text output), so tests
fake ssh and rsync at one level.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import time

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import (
    CHUNK,
    atomic_write,
    fsync_dir,
    sha256_file,
    temp_prefix,
    unlink_quiet,
)
from ansible_collections.sesdf.esus.plugins.module_utils._runner import Runner
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

MISSING = "missing"
NOT_MOUNTED = "not_mounted"
NOT_WRITABLE = "not_writable"
# a partial untouched this long belongs to a dead copy (a live one writes every few seconds)
STALE_AFTER_S = 6 * 3600


def run_command(argv, timeout):
    """The default runner: argv (no shell), captured text output, a ``_runner.Result`` (never raises)."""
    return Runner().run(argv, timeout=timeout)


def copy_stream(src, dst):
    """Copy in chunks (a seam for the tests, which cut a transfer half-way)."""
    shutil.copyfileobj(src, dst, CHUNK)


def copy_resumable(src, partial):
    """Append ``src`` to ``partial`` from the partial's size (a cut transfer resumes). Returns the offset."""
    offset = os.path.getsize(partial) if os.path.exists(partial) else 0
    if offset > os.path.getsize(src):
        unlink_quiet(partial)
        offset = 0
    with open(src, "rb") as fin, open(partial, "ab") as fout:
        fin.seek(offset)
        copy_stream(fin, fout)
        fout.flush()
        os.fsync(fout.fileno())
    return offset


def under_mount(path):
    """True when path lies below a mount point other than / (a share mounted at a parent directory)."""
    probe = os.path.abspath(path)
    while probe != "/":
        if os.path.ismount(probe):
            return True
        probe = os.path.dirname(probe)
    return False


def stale_pattern(partial, ours):
    """The regex of this collection's temporaries for final names matching ``ours``: the partial (``partial``
    with ``{name}``) and the ``atomic_write`` temporary of the ``<name>.sha256`` sidecar."""
    head, _sep, tail = partial.partition("{name}")
    sidecar_tmp = re.escape(temp_prefix("X.sha256")[:-1]).replace("X", f"(?:{ours})", 1)
    return re.compile(rf"^(?:{re.escape(head)}(?:{ours}){re.escape(tail)}|{sidecar_tmp}\.[A-Za-z0-9_]+\.tmp)$")


def clean_stale(directory, pattern, stale_after_s=STALE_AFTER_S, keep=(), now=None):
    """Remove the files of ``directory`` whose name matches ``pattern`` and that nothing wrote for
    ``stale_after_s`` seconds, except ``keep`` (names). Returns the removed paths; never raises."""
    removed = []
    now = now if now is not None else time.time()
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in sorted(names):
        path = os.path.join(directory, name)
        if name in keep or not pattern.match(name):
            continue
        try:
            if not os.path.isfile(path) or os.path.islink(path) or now - os.lstat(path).st_mtime < stale_after_s:
                continue
            os.unlink(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def sidecar_text(digest, name):
    """The ``<file>.sha256`` content (sha256sum format)."""
    return f"{digest}  {name}\n"


class PathDestination:
    """A directory another system reads (usually a mounted share).

    ``partial`` names the file while it arrives (``{name}`` is the final name); ``resume`` appends to a partial
    left by a cut transfer; ``mount_below`` accepts a share mounted at a parent directory; ``ours`` (a regex of
    the final names this collection writes there) turns on the removal of stale temporaries (see above).
    """

    kind = "path"

    def __init__(
        self,
        path,
        require_mount=False,
        mount_below=False,
        partial=".{name}.part",
        resume=False,
        ours=None,
        stale_after_s=STALE_AFTER_S,
    ):
        self.path = path
        self.require_mount = require_mount
        self.mount_below = mount_below
        self.partial = partial
        self.resume = resume
        self.label = path
        self.stale = stale_pattern(partial, ours) if ours else None
        self.stale_after_s = stale_after_s
        self.removed_stale = []

    def clean_stale(self, keep=()):
        """Remove stale temporaries of this collection here (none without ``ours``); the removed paths."""
        if self.stale is None:
            return []
        removed = clean_stale(self.path, self.stale, self.stale_after_s, keep)
        self.removed_stale.extend(removed)
        return removed

    def problem(self):
        """Why nothing can be delivered now: MISSING, NOT_MOUNTED, NOT_WRITABLE or None."""
        if not os.path.isdir(self.path):
            return MISSING
        if self.require_mount and not os.path.ismount(self.path):
            if not (self.mount_below and under_mount(self.path)):
                return NOT_MOUNTED
        if not os.access(self.path, os.W_OK):
            return NOT_WRITABLE
        return None

    def check(self):
        problem = self.problem()
        if problem == MISSING:
            raise PecError(
                f"destination {self.path} does not exist or is not mounted; mount NCAIS's share and run again "
                "(the lotes stay on the server and will be sent then)"
            )
        if problem == NOT_MOUNTED:
            raise PecError(f"destination {self.path} is not a mount point: NCAIS's share is not mounted; mount it")
        if problem == NOT_WRITABLE:
            raise PecError(f"destination {self.path} is not writable by this user")

    def remote_sha256(self, name):
        path = os.path.join(self.path, name)
        if not os.path.isfile(path):
            return None
        try:
            return sha256_file(path)
        except OSError as exc:
            raise PecError(f"cannot read {path} back at the destination: {exc}") from exc

    def put(self, local_path, name, expected_sha256=None, what=None):
        """Deliver ``local_path`` as ``name``. Returns the offset a resumed copy started from (0: whole file).

        With ``expected_sha256`` the arrived bytes are checked before the rename; a mismatch removes the partial.
        """
        final = os.path.join(self.path, name)
        part = os.path.join(self.path, self.partial.format(name=name))
        what = what or f"copy of {name} to {self.path}"
        offset = 0
        self.clean_stale(keep={os.path.basename(part)})
        try:
            if self.resume:
                offset = copy_resumable(local_path, part)
            else:
                with open(local_path, "rb") as src, open(part, "wb") as dst:
                    copy_stream(src, dst)
                    dst.flush()
                    os.fsync(dst.fileno())
            if expected_sha256:
                arrived = sha256_file(part)
                if arrived != expected_sha256:
                    unlink_quiet(part)
                    raise PecError(
                        f"{what} arrived with sha256 {arrived}, expected {expected_sha256}; "
                        "the partial copy was removed; it will be retried on the next run"
                    )
                atomic_write(final + ".sha256", sidecar_text(expected_sha256, name))
            os.replace(part, final)
        except OSError as exc:
            if not self.resume:
                with contextlib.suppress(OSError):
                    os.unlink(part)
            raise PecError(f"{what} failed: {exc.strerror or exc}; it will be retried on the next run") from exc
        fsync_dir(self.path)
        self.clean_stale()
        return offset


class RsyncDestination:
    """A directory on another server, reached with rsync over SSH (key authentication, BatchMode).

    ``port``/``strict_host_key_checking`` None leave ssh's own defaults; ``ssh_options`` are extra ssh arguments;
    ``rsync_args`` extra rsync arguments (e.g. ``--partial-dir=.rsync-partial`` to resume a cut transfer).
    """

    kind = "rsync"

    def __init__(
        self,
        host,
        path,
        user=None,
        port=22,
        ssh_key=None,
        known_hosts=None,
        timeout=60,
        strict_host_key_checking=True,
        ssh_options=None,
        connect_timeout=None,
        rsync="rsync",
        rsync_args=("--times", "--chmod=F0640"),
        put_timeout=None,
        runner=run_command,
    ):
        self.host = host
        self.path = path.rstrip("/") or "/"
        self.user = user
        self.port = int(port) if port else None
        self.ssh_key = ssh_key
        self.known_hosts = known_hosts
        self.timeout = int(timeout)
        self.strict = strict_host_key_checking
        self.ssh_options = list(ssh_options or [])
        self.connect_timeout = connect_timeout or min(self.timeout, 30)
        self.rsync = rsync
        self.rsync_args = list(rsync_args)
        self.put_timeout = put_timeout or self.timeout * 10
        self.runner = runner
        self.target = f"{user}@{host}" if user else host
        self.label = f"{self.target}:{self.path}"

    @classmethod
    def from_target(cls, target, **kwargs):
        """From ``[user@]host:/directory`` (the backup's off-host destination)."""
        host, sep, remote_dir = str(target).partition(":")
        if not sep or not remote_dir or not host:
            raise PecError(f"rsync target {target!r} must look like user@host:/directory")
        return cls(host, remote_dir, **kwargs)

    def ssh_cmd(self):
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if self.port:
            cmd += ["-p", str(self.port)]
        if self.strict is not None:
            cmd += ["-o", "StrictHostKeyChecking=" + ("yes" if self.strict else "accept-new")]
        if self.ssh_key:
            cmd += ["-i", self.ssh_key, "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            cmd += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        return cmd + self.ssh_options

    def remote(self, name):
        return self.path.rstrip("/") + "/" + name

    def _ssh(self, remote_cmd, timeout=None):
        """Run one remote shell command (every path in it quoted by the caller with shlex.quote)."""
        proc = self.runner([*self.ssh_cmd(), self.target, remote_cmd], timeout or self.timeout)
        if proc.timed_out:
            raise PecError(f"server {self.label} did not answer within {self.timeout}s; try again later")
        if proc.rc is None:
            raise PecError(proc.why())
        return proc

    def check(self):
        quoted = shlex.quote(self.path)
        proc = self._ssh(f"test -d {quoted} && test -w {quoted}")
        if proc.rc == 255:
            raise PecError(
                f"cannot reach NCAIS server {self.target} over SSH ({(proc.stderr or '').strip()[:200]}); check the "
                "network, the SSH key and known_hosts (the lotes stay on the server and will be sent next run)"
            )
        if proc.rc != 0:
            raise PecError(f"destination directory {self.label} is missing or not writable on NCAIS's server")

    def remote_sha256(self, name):
        remote = shlex.quote(self.remote(name))
        proc = self._ssh(f"if [ -f {remote} ]; then sha256sum -- {remote}; else echo ABSENT; fi")
        if proc.rc != 0:
            raise PecError(f"cannot check {self.remote(name)} on {self.target}: {(proc.stderr or '').strip()[:200]}")
        out = (proc.stdout or "").strip()
        if out == "ABSENT" or not out:
            return None
        return out.split()[0]

    def write_sidecar(self, name, digest):
        """``<name>.sha256`` beside the delivered file, written by the remote shell (paths quoted)."""
        text = shlex.quote(sidecar_text(digest, name))
        return self._ssh(f"printf %s {text} > {shlex.quote(self.remote(name) + '.sha256')}", timeout=60)

    def put(self, local_path, name, expected_sha256=None, what=None):
        """rsync ``local_path`` to ``name`` in the directory; with ``expected_sha256`` check it on arrival."""
        what = what or f"rsync of {name} to {self.label}"
        ssh = " ".join(shlex.quote(a) for a in self.ssh_cmd())
        cmd = [self.rsync, *self.rsync_args, "-e", ssh, local_path, f"{self.target}:{self.remote(name)}"]
        proc = self.runner(cmd, self.put_timeout)
        if proc.timed_out:
            raise PecError(f"{what} timed out; it will be retried next run")
        if proc.rc is None:
            raise PecError(proc.why())
        if proc.rc != 0:
            raise PecError(
                f"{what} failed (rc {proc.rc}): {(proc.stderr or '').strip()[:300]}; "
                "it will be retried (and resumed) on the next run"
            )
        if expected_sha256:
            arrived = self.remote_sha256(name)
            if arrived != expected_sha256:
                raise PecError(
                    f"{what}: {self.target}:{self.remote(name)} has sha256 {arrived}, expected {expected_sha256}; "
                    "it will be sent again on the next run"
                )
            self.write_sidecar(name, expected_sha256)
        return 0
