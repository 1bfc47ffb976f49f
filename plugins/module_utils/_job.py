# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract of every program the collection runs on a server without Ansible (the "jobs").

A job is a ``cli_main(argv)`` in module_utils that calls :func:`job_main` with:

- a **configuration dataclass** (subclass of :class:`JobConfig`) holding the defaults; the JSON file the role writes
  is read and validated against it on load (unknown key, missing required key or wrong type: exit 2);
- a **body** ``body(config, args, log) -> exit code`` using the one **exit-code vocabulary** below;
- one **log**: :class:`JobLog` writes each line to stderr, which the job's systemd unit (``SyslogIdentifier=`` the
  job's name) or, where a user asked for cron, ``systemd-cat -t <name>`` sends to the journal once, with its priority.

Installed by the ``sesdf.esus.runtime`` role (``tasks_from: job``): entry point ``/usr/local/sbin/<name>``, the
config file, a oneshot service and a timer with ``Persistent=true``. Every non-zero exit leaves the unit failed, so
``systemctl --failed`` lists every job that wants a look.

Standard library only: these files are copied onto servers that have no Ansible.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import types
import typing

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import write_json
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import local_now_iso
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

# The exit codes of every job (docs/jobs.md).
EXIT_OK = 0  # done; nothing to look at
EXIT_FAILED = 1  # the job's main duty failed (no backup, nothing exported, no valid CNES file, a step errored)
EXIT_CONFIG = 2  # the configuration cannot be read or is invalid: run the role that installs the job again
EXIT_ATTENTION = 3  # the main duty is done but something wants a look (off-host copy failed, lote pending, alarm)

EXIT_MEANING = {
    EXIT_OK: "ok",
    EXIT_FAILED: "falhou",
    EXIT_CONFIG: "configuração ilegível ou inválida",
    EXIT_ATTENTION: "concluído com pendência",
}

# syslog priorities, as the journal reads a "<N>" prefix on a line of a service's stderr
PRIORITIES = {"err": 3, "error": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}


def stderr_is_journal():
    """True when stderr is the journal stream systemd gave this process (``JOURNAL_STREAM`` names its device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


class JobLog:
    """``log(message, priority)``: one line on stderr, the job's only log.

    Under systemd (stderr is the journal) the line carries its priority as a ``<N>`` prefix, which the journal
    strips; on a terminal or a pipe it is plain, prefixed with the local time when ``timestamps`` is set.
    """

    def __init__(self, tag, timestamps=False, journal=None):
        self.tag = tag
        self.timestamps = timestamps
        self.journal = stderr_is_journal() if journal is None else journal

    def __call__(self, message, priority="info"):
        for line in str(message).splitlines() or [""]:
            if self.journal:
                sys.stderr.write(f"<{PRIORITIES.get(priority, 6)}>{line}\n")
            elif self.timestamps:
                sys.stderr.write(f"{local_now_iso()} {line}\n")
            else:
                sys.stderr.write(line + "\n")
        sys.stderr.flush()


class ConfigError(Exception):
    """The job's config file cannot be read or is invalid: ``path`` and ``reason`` (str(error) is the reason)."""

    def __init__(self, path, reason):
        super().__init__(reason)
        self.path = path
        self.reason = reason


def read_config(path):
    """The job's JSON config (a dict). Raises ConfigError naming the file when it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(path, exc) from exc
    if not isinstance(data, dict):
        raise ConfigError(path, "not a JSON object")
    return data


@dataclasses.dataclass
class JobConfig:
    """Base of each job's configuration: the fields, their types and defaults are the job's config schema."""

    def as_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, path):
        """Read ``path`` and validate it against this dataclass; ConfigError names the file and every problem."""
        return cls.from_dict(read_config(path), path)

    @classmethod
    def from_dict(cls, data, path="<config>"):
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        problems = [f"unknown key {key!r}" for key in sorted(set(data) - set(fields))]
        for name, field in fields.items():
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if name not in data:
                if required:
                    problems.append(f"missing key {name!r}")
                continue
            why = type_problem(data[name], hints[name])
            if why:
                problems.append(f"{name}: {why}")
        if problems:
            raise ConfigError(path, "; ".join(problems))
        return cls(**{k: v for k, v in data.items() if k in fields})


# typing.Optional[X]; X | None too where Python has it (3.10+)
_UNIONS = (typing.Union, getattr(types, "UnionType", typing.Union))
_SCALARS = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "an object"}


def type_problem(value, hint):
    """Why ``value`` does not fit the type ``hint`` (str, int, float, bool, dict, list[X], X | None), or None."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNIONS:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        whys = [type_problem(value, a) for a in options]
        return None if any(w is None for w in whys) else whys[0]
    if origin is list or hint is list:
        if not isinstance(value, list):
            return f"expected a list, got {type(value).__name__}"
        for index, item in enumerate(value):
            why = type_problem(item, args[0]) if args else None
            if why:
                return f"item {index}: {why}"
        return None
    if origin is dict or hint is dict:
        return None if isinstance(value, dict) else f"expected an object, got {type(value).__name__}"
    if hint is typing.Any:
        return None
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return None if ok else f"expected {_SCALARS.get(hint, hint.__name__)}, got {type(value).__name__}"


def job_main(
    prog, description, config_cls, body, argv=None, default_config=None, role="", add_arguments=None, umask=0o077
):
    """The skeleton every job's ``cli_main`` runs: arguments, umask, config, body, exit code.

    ``body(config, args, log)`` returns an exit code of the vocabulary above; a PecError it lets through is logged
    and ends the job with EXIT_FAILED. ``role`` is the role that installs the job (named when the config is bad).
    ``umask``: what the job creates is private unless a job that installs packages asks for the system's 0022.
    """
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", default=default_config)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    log = JobLog(prog)
    os.umask(umask)
    try:
        config = config_cls.load(args.config)
    except ConfigError as exc:
        hint = f"; rode de novo o papel sesdf.esus.{role} para reinstalá-la" if role else ""
        log(f"configuração {exc.path} ilegível ou inválida: {exc.reason}{hint}", "err")
        return EXIT_CONFIG
    try:
        return body(config, args, log)
    except PecError as exc:
        log(f"ERRO: {exc.msg}", "err")
        return EXIT_FAILED


def write_status(path, document, mode=0o644, create_dir=False):
    """Write the job's status file (JSON, atomic). Raises PecError when it cannot be written."""
    if create_dir:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    write_json(path, document, mode=mode)


def write_status_quiet(path, document, mode=0o644):
    """Like write_status, but a status file that cannot be written does not fail the job."""
    try:
        write_status(path, document, mode)
    except PecError:
        return False
    return True
