# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A BorgBackup repository of one UBS: the commands the off-host copy, the repository check, the restore drill and
the retention need, and the classification of borg's failures into messages that say what to do.

Every borg command goes through one runner (``BorgRunner``, over ``_runner``), so the tests fake borg at that
level. The repository passphrase is never in argv nor in the environment: borg reads it with
``BORG_PASSCOMMAND=cat <root-only file>`` (the environment holds the file's path only). ssh runs with ``BatchMode``
and the UBS's own key; on the backup host that key's ``command=`` forces
``borg serve --restrict-to-repository <repo> --append-only``.

Standard library only: copied onto servers without Ansible.
"""

from __future__ import annotations

import json
import os
import re
import shlex

from ansible_collections.sesdf.esus.plugins.module_utils._runner import DEVNULL, PIPE, Runner
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

# ~64 KiB average chunks: a logical dump moves updated rows, and borg's default (2 MiB) re-sends most of the dump
DEFAULT_CHUNKER = "buzhash,14,20,16,4095"
DEFAULT_COMPRESSION = "zstd,3"
STDIN_NAME = "esus.pgdump"
CHECKPOINT_SUFFIX = ".checkpoint"

WRONG_PASSPHRASE = "wrong_passphrase"  # noqa: S105 - a failure kind, not a secret
NO_REPOSITORY = "no_repository"
NOT_A_REPOSITORY = "not_a_repository"
FULL = "full"
DOWN = "down"
DENIED = "denied"
LOCKED = "locked"
OTHER = "other"

_PATTERNS = (
    (WRONG_PASSPHRASE, re.compile(r"passphrase supplied in .* is incorrect|passphrase.*incorrect", re.I)),
    (FULL, re.compile(r"no space left on device|insufficient free space", re.I)),
    (NO_REPOSITORY, re.compile(r"Repository .* does not exist", re.I)),
    (NOT_A_REPOSITORY, re.compile(r"is not a valid repository", re.I)),
    (DENIED, re.compile(r"Permission denied \(publickey|path not allowed|not permitted|PermissionDenied", re.I)),
    (
        DOWN,
        re.compile(
            r"Connection (refused|closed|timed out|reset)|No route to host|Could not resolve hostname|"
            r"ssh: connect to host|Network is unreachable|Host key verification failed",
            re.I,
        ),
    ),
    (LOCKED, re.compile(r"Failed to create/acquire the lock", re.I)),
)

_ADVICE = {
    WRONG_PASSPHRASE: "the repository's key does not open with this UBS's passphrase: either the passphrase file was "
    "changed (restore it from IT's vault: backup_schedule_borg_passphrase) or the repository there was made by "
    "another UBS (point backup_schedule_offhost_dest to this UBS's own repository)",
    FULL: "the destination is full; free space there (retention runs on the backup host) and the missing days are "
    "sent on the next run",
    NO_REPOSITORY: "there is no repository there",
    NOT_A_REPOSITORY: "the destination holds something that is not a borg repository; point "
    "backup_schedule_offhost_dest to an empty directory or to this UBS's repository",
    DENIED: "the backup host refused this UBS's key or repository path; run the backup_schedule role again "
    "(it installs the key, restricted to this repository, on the backup host)",
    DOWN: "the backup host cannot be reached; the missing days are sent when it is back",
    LOCKED: "another borg command holds the repository lock; it is retried on the next run",
    OTHER: "see the borg message",
}


def classify(stderr):
    """The kind of a borg failure from its stderr (one of the constants above)."""
    for kind, pattern in _PATTERNS:
        if pattern.search(stderr or ""):
            return kind
    return OTHER


def last_lines(text, count=3):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " / ".join(lines[-count:])


class BorgError(PecError):
    """A borg command failed: ``kind`` (see classify) and a message naming the repository and what to do."""

    def __init__(self, what, location, stderr, rc):
        self.kind = classify(stderr)
        super().__init__(
            f"{what} in the borg repository {location} failed (rc={rc}): {_ADVICE[self.kind]} "
            f"(borg: {last_lines(stderr) or 'no message'}); the local backups are untouched",
            kind=self.kind,
        )


class BorgRunner:
    """How the borg commands (and what feeds it or reads it) run, over ``_runner.Runner``. ``run`` -> (rc, stdout,
    stderr) as text; ``pipe`` runs ``producer | argv`` -> (producer_rc, rc, stdout, stderr); ``extract_to`` runs
    ``argv | consumer`` -> (rc, consumer_rc, stderr of both); both through ``chain``. A command that outruns its
    timeout (or is not installed) is a PecError that says so."""

    def __init__(self, pdeathsig=False, runner=None):
        self.runner = runner or Runner(pdeathsig=pdeathsig)

    def _done(self, result):
        if result.rc is None:
            raise PecError(f"{result.why()}; the local backups are untouched")
        return result

    def run(self, argv, env, timeout=None, stdin=None):
        """``stdin``: text written to the command's standard input (the passphrase with BORG_PASSPHRASE_FD=0)."""
        result = self._done(self.runner.run(argv, env=env, timeout=timeout, stdin=stdin))
        return result.rc, result.stdout, result.stderr

    def chain(self, first, second, first_env, second_env, timeout=None, cwd=None):
        """``first | second`` -> (first rc, second rc, second's stdout, stderr of both); ``first`` is waited for
        after ``second`` ends (borg ends its session after the last byte), killed only when it does not end.
        ``cwd``: the working directory of ``second`` (borg create stores relative paths from there)."""
        src = self.runner.spawn(first, env=first_env, stdin=DEVNULL, stdout=PIPE, stderr=PIPE)
        try:
            proc = self.runner.run(second, env=second_env, stdin=src.stdout, timeout=timeout, cwd=cwd)
        finally:
            src.stdout.close()  # a second that stopped reading ends the first with SIGPIPE
            first_rc = self.runner.stop(src, grace=300)
            first_err = src.stderr.read().decode(errors="replace")
            src.stderr.close()
        self._done(proc)
        return first_rc, proc.rc, proc.stdout, proc.stderr + first_err

    def pipe(self, producer, argv, env, timeout=None, cwd=None):
        return self.chain(producer, argv, None, env, timeout=timeout, cwd=cwd)

    def extract_to(self, argv, env, consumer, consumer_env, timeout=None):
        rc, consumer_rc, _out, err = self.chain(argv, consumer, env, consumer_env, timeout=timeout)
        return rc, consumer_rc, err


def comment_text(document):
    """An archive comment holding a JSON document (borg expands ``{...}`` placeholders in comments)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).replace("{", "{{").replace("}", "}}")


class BorgRepo:
    """One repository, ``location`` a path or ``ssh://user@host[:port]/path``.

    The passphrase comes from ``passphrase_file`` (``BORG_PASSCOMMAND=cat <file>``) or, where no file holds it (the
    backup host's retention), from ``passphrase``: written to borg's standard input with ``BORG_PASSPHRASE_FD=0``,
    never in argv nor in the environment. ``base_dir`` None keeps borg's own (the user's home). ``lock_wait``:
    seconds a command waits for a lock another borg holds (borg's default is 1).
    """

    def __init__(
        self,
        location,
        passphrase_file,
        base_dir,
        ssh_key=None,
        known_hosts=None,
        borg="borg",
        chunker=DEFAULT_CHUNKER,
        compression=DEFAULT_COMPRESSION,
        timeout=None,
        runner=None,
        passphrase=None,
        lock_wait=None,
    ):
        if not location:
            raise PecError("the borg repository location is empty: set backup_schedule_offhost_dest")
        self.location = location
        self.passphrase_file = passphrase_file
        self.base_dir = base_dir
        self.ssh_key = ssh_key
        self.known_hosts = known_hosts
        self.borg = borg
        self.chunker = chunker
        self.compression = compression
        self.timeout = timeout
        self.runner = runner or BorgRunner()
        self.passphrase = passphrase
        self.lock_wait = lock_wait

    @property
    def over_ssh(self):
        return self.location.startswith("ssh://")

    def env(self):
        """borg's environment: the passphrase file's *path*, non-interactive answers, a fixed base directory."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BORG_")}
        if self.passphrase is not None:
            env["BORG_PASSPHRASE_FD"] = "0"  # noqa: S105 - the descriptor number, not a secret
        else:
            env["BORG_PASSCOMMAND"] = "cat " + shlex.quote(self.passphrase_file)
        if self.base_dir:
            env["BORG_BASE_DIR"] = self.base_dir
        env.update(
            BORG_RELOCATED_REPO_ACCESS_IS_OK="no",
            BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="no",
            BORG_CHECK_I_KNOW_WHAT_I_AM_DOING="NO",
            BORG_DELETE_I_KNOW_WHAT_I_AM_DOING="NO",
            BORG_DISPLAY_PASSPHRASE="no",  # noqa: S106 - never print it
        )
        if self.over_ssh:
            rsh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=30"]
            if self.ssh_key:
                rsh += ["-i", self.ssh_key, "-o", "IdentitiesOnly=yes"]
            if self.known_hosts:
                rsh += ["-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + self.known_hosts]
            env["BORG_RSH"] = shlex.join(rsh)
        return env

    def _run(self, what, args, ok_rcs=(0,), timeout=None):
        if self.lock_wait is not None:
            args = [args[0], "--lock-wait", str(int(self.lock_wait)), *args[1:]]
        stdin = {} if self.passphrase is None else {"stdin": self.passphrase + "\n"}
        rc, out, err = self.runner.run([self.borg, *args], self.env(), timeout=timeout or self.timeout, **stdin)
        if rc not in ok_rcs:
            raise BorgError(what, self.location, err, rc)
        return rc, out, err

    def archive(self, name):
        return f"{self.location}::{name}"

    def info(self):
        """Repository id and encryption (``borg info --json``); raises BorgError (kind no_repository when absent)."""
        _rc, out, _err = self._run("reading the repository", ["info", "--json", self.location])
        data = json.loads(out)
        return {"id": data["repository"]["id"], "encryption": data.get("encryption", {}).get("mode")}

    def init(self, append_only=False):
        args = ["init", "--encryption=repokey-blake2", "--make-parent-dirs"]
        if append_only:
            args.append("--append-only")
        self._run("creating the repository", [*args, self.location])

    def config_set(self, name, value):
        """``borg config <repo> <name> <value>`` (a local repository's own settings)."""
        self._run("changing the repository's settings", ["config", self.location, name, str(value)])

    def export_key(self, path):
        """The repokey (encrypted by the passphrase) into ``path``, for IT's vault."""
        self._run("exporting the key", ["key", "export", self.location, path])

    def archives(self, prefix=None):
        """[{name, start, id}] oldest first (checkpoints excluded); only ``prefix*`` names with a prefix."""
        args = ["list", "--json"]
        if prefix:
            args += ["--glob-archives", prefix + "*"]
        _rc, out, _err = self._run("listing the archives", [*args, self.location])
        found = json.loads(out).get("archives", [])
        return [a for a in found if not a["name"].endswith(CHECKPOINT_SUFFIX)]

    def archive_info(self, name):
        _rc, out, _err = self._run("reading an archive", ["info", "--json", self.archive(name)])
        return json.loads(out)["archives"][0]

    def create_from(self, producer, name, timestamp, comment, paths=(), cwd=None):
        """``producer | borg create ... REPO::name - [paths]``: the producer's stdout is stored as STDIN_NAME, then
        ``paths`` (relative to ``cwd``: the collection's state tree beside the dump, in the same archive).

        rc 1 (warnings) counts as success; a producer failure fails it (and the checkpoint is left for borg)."""
        args = [
            self.borg,
            "create",
            "--stdin-name",
            STDIN_NAME,
            "--stdin-mode",
            "0600",
            "--chunker-params",
            self.chunker,
            "--compression",
            self.compression,
            "--timestamp",
            timestamp,
            "--comment",
            comment_text(comment),
            "--json",
            self.archive(name),
            "-",
            *paths,
        ]
        where = {"cwd": cwd} if cwd else {}
        prod_rc, rc, out, err = self.runner.pipe(producer, args, self.env(), timeout=self.timeout, **where)
        if rc not in (0, 1):
            raise BorgError(f"sending {name}", self.location, err, rc)
        if prod_rc != 0:
            raise PecError(
                f"reading the local backup for {name} failed ({last_lines(err)}); nothing was added to "
                f"{self.location}; the local backup is kept and retried on the next run"
            )
        try:
            stats = json.loads(out)["archive"]["stats"]
        except (ValueError, KeyError, TypeError):
            stats = {}
        return {
            "name": name,
            "original_size": stats.get("original_size"),
            "deduplicated_size": stats.get("deduplicated_size"),
            "compressed_size": stats.get("compressed_size"),
        }

    def extract_to(self, name, consumer, consumer_env):
        """``borg extract --stdout REPO::name esus.pgdump | consumer`` -> (borg rc, consumer rc, stderr): the dump
        only (an archive may hold the collection's state tree beside it)."""
        argv = [self.borg, "extract", "--stdout", self.archive(name), STDIN_NAME]
        return self.runner.extract_to(argv, self.env(), consumer, consumer_env, timeout=self.timeout)

    def export_tar(self, name, path, paths=()):
        """``borg export-tar REPO::name PATH [paths]``: members of an archive into a tar file (what the rebuild reads
        the state tree from). Raises BorgError; a path absent from the archive is not an error (the tar is empty)."""
        self._run("reading an archive", ["export-tar", self.archive(name), path, *paths], ok_rcs=(0, 1))

    def check(self, verify_data=True):
        """``borg check [--verify-data]``: (ok, message). A damaged repository is a result, not an exception; a
        repository that cannot be reached raises BorgError."""
        args = ["check", *(["--verify-data"] if verify_data else []), self.location]
        rc, _out, err = self.runner.run([self.borg, *args], self.env(), timeout=self.timeout)
        if rc == 0:
            return True, None
        kind = classify(err)
        if kind in (DOWN, WRONG_PASSPHRASE, DENIED, NO_REPOSITORY, NOT_A_REPOSITORY, LOCKED):
            raise BorgError("checking", self.location, err, rc)
        return False, last_lines(err, 5) or f"borg check rc={rc}"

    def prune_archives(self, prefix, keep_daily, keep_weekly, keep_monthly, dry_run=False):
        """``borg prune`` by archive date for ``prefix*`` (the newest archive is always in keep-daily); no compact.
        Returns the names pruned (or, with ``dry_run``, that would be)."""
        if int(keep_daily) < 1:
            raise PecError("keep_daily must be at least 1: the newest verified copy is never pruned")
        args = [
            "prune",
            "--list",
            *(["--dry-run"] if dry_run else []),
            "--glob-archives",
            prefix + "*",
            "--keep-daily",
            str(int(keep_daily)),
            "--keep-weekly",
            str(int(keep_weekly)),
            "--keep-monthly",
            str(int(keep_monthly)),
            self.location,
        ]
        _rc, _out, err = self._run("pruning", args, ok_rcs=(0, 1))
        marks = ("Pruning archive", "Would prune:")
        return [line.split(":", 1)[1].split()[0] for line in err.splitlines() if line.startswith(marks) and ":" in line]

    def compact(self):
        """``borg compact``: frees the space of what was deleted (in a repository not in append-only mode)."""
        self._run("compacting", ["compact", self.location], ok_rcs=(0, 1))

    def prune(self, prefix, keep_daily, keep_weekly, keep_monthly):
        """Retention by archive date for ``prefix*`` (the newest archive is always in keep-daily), then compact."""
        pruned = self.prune_archives(prefix, keep_daily, keep_weekly, keep_monthly)
        self.compact()
        return pruned
