# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place this collection starts a program (the role community.general's CmdRunner plays there).

- ``Runner.run(argv, *, timeout, ...)`` runs one command to its end and returns a :class:`Result` (rc, stdout,
  stderr, argv, timed_out, missing, skipped). It never raises for a failing, missing or slow program: a program
  that outlives ``timeout`` is killed and waited for (no zombie), a program that is not installed is a result that
  names it and what to install. ``check=True`` turns a failure into a PecError with ``Result.why()``.
- ``Runner.spawn(argv, ...)`` starts one stage of a pipeline (a ``Popen`` the caller wires, feeds and waits for);
  ``Runner.stop(proc)`` kills and reaps one that must not go on.
- ``pdeathsig=True``: every child gets SIGKILL when this process dies (a killed backup job must not leave pg_dump
  writing), as the server-side jobs need.
- Check mode in one place: a runner built with ``check_mode=True`` does not run a command marked
  ``changes=True`` (it returns a skipped result, or refuses to spawn it); read-only commands run.

Messages never hold the environment (it may name a password file, never the password: still, it is not shown).
Standard library only: copied onto servers without Ansible (runtime_module_utils).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT
TimeoutExpired = subprocess.TimeoutExpired

# What provides a program this collection runs (Debian package names), for the message of a missing one.
PROVIDERS = {
    "age": "the age package (apt-get install age)",
    "borg": "BorgBackup (apt-get install borgbackup)",
    "dpkg-query": "dpkg (is this a Debian host?)",
    "iperf3": "iperf3 (apt-get install iperf3)",
    "ip": "iproute2 (apt-get install iproute2)",
    "java": "a Java runtime (upgrade_jre_package)",
    "locale": "libc-bin (apt-get install libc-bin)",
    "logger": "bsdutils (apt-get install bsdutils)",
    "logrotate": "logrotate (apt-get install logrotate)",
    "pg_dump": "the PEC's PostgreSQL client tools (check pg_bin_dir)",
    "pg_restore": "the PEC's PostgreSQL client tools (check pg_bin_dir)",
    "psql": "the PEC's PostgreSQL client tools (check pg_bin_dir)",
    "rsync": "rsync (apt-get install rsync)",
    "ss": "iproute2 (apt-get install iproute2)",
    "ssh": "openssh-client (apt-get install openssh-client)",
    "systemctl": "systemd (is this a host with systemd?)",
    "zstd": "zstd (apt-get install zstd)",
}


def set_pdeathsig():
    """In the child before exec: die with SIGKILL when the parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def program(argv):
    return os.path.basename(str(argv[0])) if argv else "?"


def missing_message(argv):
    """``<program> not found (not installed on this server): install <what provides it>``."""
    name = program(argv)
    where = "" if name == str(argv[0]) else f" at {argv[0]}"
    hint = PROVIDERS.get(name, f"the package that provides {name}")
    return f"{name} not found{where} (not installed on this server, or not on the PATH): install {hint}"


def _text(data, text):
    if data is None:
        return "" if text else b""
    if text and isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def _last_lines(data, count=3):
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    lines = [line.strip() for line in (data or "").splitlines() if line.strip()]
    return " / ".join(lines[-count:])


class Result:
    """What one command did. ``rc`` is None when it did not end by itself (timed out, missing, skipped)."""

    __slots__ = ("argv", "error", "missing", "rc", "skipped", "stderr", "stdout", "timed_out", "timeout")

    def __init__(
        self, argv, rc, stdout="", stderr="", timed_out=False, timeout=None, missing=False, skipped=False, error=None
    ):
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.timeout = timeout
        self.missing = missing
        self.skipped = skipped
        self.error = error  # an OSError's text when the program could not be started

    @property
    def ok(self):
        return self.rc == 0

    @property
    def output(self):
        """stdout then stderr (``java -version`` prints on stderr)."""
        if isinstance(self.stdout, bytes):
            return (self.stdout or b"") + (self.stderr or b"")
        return (self.stdout or "") + (self.stderr or "")

    def why(self, what=None):
        """Why it did not succeed, for a message: the program, the rc and its last lines; never the environment."""
        what = what or program(self.argv)
        if self.skipped:
            return f"{what} was not run (check mode)"
        if self.missing:
            return missing_message(self.argv)
        if self.error:
            return f"{what} could not be started: {self.error}"
        if self.timed_out:
            return f"{what} did not finish within {self.timeout}s and was stopped"
        if self.rc == 0:
            return f"{what} succeeded"
        said = _last_lines(self.stderr) or _last_lines(self.stdout) or "no message"
        return f"{what} failed (rc={self.rc}): {said}"

    @property
    def message(self):
        return self.why()

    def __repr__(self):
        return f"Result(rc={self.rc!r}, program={program(self.argv)!r}, timed_out={self.timed_out})"


class Runner:
    """Runs commands without a shell. One instance per caller; tests replace it with ``FakeRunner``."""

    def __init__(self, check_mode=False, pdeathsig=False):
        self.check_mode = check_mode
        self.pdeathsig = pdeathsig

    def _preexec(self):
        return set_pdeathsig if self.pdeathsig else None

    def run(
        self,
        argv,
        *,
        timeout,
        env=None,
        stdin=None,
        text=True,
        check=False,
        changes=False,
        cwd=None,
        stdout=PIPE,
        stderr=PIPE,
    ):
        """Run ``argv`` to its end. ``stdin``: None (no input), a str/bytes (written to it) or a file object;
        ``stdout``/``stderr``: captured (PIPE), or DEVNULL, STDOUT (stderr into stdout) or a file object."""
        argv = [str(a) for a in argv]
        if changes and self.check_mode:
            result = Result(argv, None, _text(None, text), _text(None, text), skipped=True)
        else:
            result = self._execute(argv, timeout, env, stdin, text, cwd, stdout, stderr)
        if check and not result.ok and not result.skipped:
            raise PecError(result.why())
        return result

    def _execute(self, argv, timeout, env, stdin, text, cwd, stdout, stderr):
        """The one ``subprocess.run``: a Result whatever happens (FakeRunner replaces this method only)."""
        kwargs = {}
        if isinstance(stdin, (str, bytes)):
            kwargs["input"] = stdin.encode("utf-8") if isinstance(stdin, str) and not text else stdin
        else:
            kwargs["stdin"] = DEVNULL if stdin is None else stdin
        try:
            proc = subprocess.run(
                argv,
                stdout=stdout,
                stderr=stderr,
                text=text,
                env=env,
                cwd=cwd,
                timeout=timeout,
                check=False,
                preexec_fn=self._preexec(),
                **kwargs,
            )
        except subprocess.TimeoutExpired as exc:  # run() killed and reaped it
            result = Result(
                argv, None, _text(exc.stdout, text), _text(exc.stderr, text), timed_out=True, timeout=timeout
            )
        except FileNotFoundError as exc:
            if cwd is not None and exc.filename == cwd:
                result = Result(argv, None, error=f"no directory {cwd}")
            else:
                result = Result(argv, None, _text(None, text), _text(None, text), missing=True)
        except OSError as exc:  # not executable, ...
            result = Result(argv, None, _text(None, text), _text(None, text), error=exc.strerror or str(exc))
        else:
            result = Result(argv, proc.returncode, _text(proc.stdout, text), _text(proc.stderr, text))
        return result

    def spawn(self, argv, *, stdin=None, stdout=None, stderr=None, env=None, cwd=None, changes=False):
        """Start one stage of a pipeline and return its ``Popen`` (binary pipes); the caller waits for it (or
        ``stop``s it). A missing program is a PecError that names it; in check mode a stage that changes state
        is refused (the callers describe check mode before streaming anything)."""
        argv = [str(a) for a in argv]
        if changes and self.check_mode:
            raise PecError(f"{program(argv)} changes state and is not run in check mode")
        try:
            return subprocess.Popen(
                argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd, preexec_fn=self._preexec()
            )
        except FileNotFoundError as exc:
            if cwd is not None and exc.filename == cwd:
                raise PecError(f"{program(argv)} could not be started: no directory {cwd}") from None
            raise PecError(missing_message(argv)) from None
        except OSError as exc:
            raise PecError(f"{program(argv)} could not be started: {exc.strerror or exc}") from None

    @staticmethod
    def stop(proc, grace=None):
        """Kill ``proc`` (after ``grace`` seconds when given) unless it already ended, and reap it: its rc."""
        if proc is None:
            return None
        if grace is not None:
            try:
                return proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            proc.kill()
        return proc.wait()

    @staticmethod
    def wait(proc, timeout):
        """``proc.wait(timeout)``; None when it is still running then (nothing is killed)."""
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    @staticmethod
    def which(name, path=None):
        return shutil.which(name, path=path)

    @staticmethod
    def executable(path):
        return executable(path)


def executable(path):
    """True when ``path`` is a regular file this process may execute."""
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def run(argv, **kwargs):
    """``Runner().run``: one command with the default runner (no check mode, no pdeathsig)."""
    return Runner().run(argv, **kwargs)
