# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Syntax check of an auditd rules file without the kernel: the ``sesdf-audit-rules-check`` program.

Installed on the server by the sesdf.esus.hardening role (through sesdf.esus.runtime), which uses it to validate
the rules file it writes. auditctl -R needs the audit netlink socket, which containers and some hosts refuse;
this checker parses the subset of auditctl syntax the collection writes (control options, -w watches, -a/-A
syscall rules) and exits 1 with one message per bad line. Usage: sesdf-audit-rules-check FILE
"""

from __future__ import annotations

import os
import re
import sys

CONTROL = {
    "-D": 0,
    "-b": 1,
    "-f": 1,
    "-r": 1,
    "-e": 1,
    "-i": 0,
    "-c": 0,
    "--backlog_wait_time": 1,
    "--loginuid-immutable": 0,
}
ACTIONS = {"always", "never"}
LISTS = {"exit", "task", "exclude", "user", "filesystem", "io_uring"}
FIELD_RE = re.compile(r"^[a-z_0-9]+(=|!=|<=|>=|<|>|&=|&)\S+$")
KEY_MAX = 31


def check_line(tokens):
    """Errors (list of str) of one rule line split into tokens."""
    errors = []
    opt = tokens[0]
    if opt in CONTROL:
        if len(tokens) != 1 + CONTROL[opt]:
            errors.append(f"{opt} takes {CONTROL[opt]} argument(s)")
        elif CONTROL[opt] and opt not in ("--backlog_wait_time",) and not tokens[1].isdigit():
            errors.append(f"{opt} needs a number, not {tokens[1]!r}")
        return errors
    if opt == "-w":
        args = dict(zip(tokens[2::2], tokens[3::2], strict=False))
        if len(tokens) < 2 or not tokens[1].startswith("/"):
            errors.append("-w needs an absolute path")
        if (len(tokens) - 2) % 2:
            errors.append("-w options come in pairs (-p PERMS -k KEY)")
        for name in args:
            if name not in ("-p", "-k", "-F"):
                errors.append(f"unknown option {name} in a watch")
        perms = args.get("-p", "rwxa")
        if not perms or set(perms) - set("rwxa"):
            errors.append(f"-p must be made of r, w, x, a, not {perms!r}")
        key = args.get("-k")
        if key is not None and (not key or len(key) > KEY_MAX):
            errors.append(f"-k key must be 1..{KEY_MAX} characters")
        return errors
    if opt in ("-a", "-A"):
        if len(tokens) < 2 or "," not in tokens[1]:
            errors.append(f"{opt} needs ACTION,LIST (e.g. always,exit)")
            return errors
        first, second = tokens[1].split(",", 1)
        if not ({first, second} & ACTIONS and {first, second} & LISTS):
            errors.append(f"{tokens[1]!r} is not an ACTION,LIST pair")
        rest = tokens[2:]
        if len(rest) % 2:
            errors.append("options come in pairs (-F field=value, -S syscall, -k key)")
        for name, value in zip(rest[::2], rest[1::2], strict=False):
            if name == "-F" and not FIELD_RE.match(value):
                errors.append(f"bad field expression {value!r}")
            elif name == "-k" and len(value) > KEY_MAX:
                errors.append(f"-k key must be at most {KEY_MAX} characters")
            elif name not in ("-F", "-S", "-k", "-C"):
                errors.append(f"unknown option {name}")
        return errors
    return [f"unknown rule {opt!r}"]


def check_text(text):
    problems = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for error in check_line(line.split()):
            problems.append(f"line {number}: {error}: {line}")
    return problems


def count_rules(text):
    return sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#"))


def cli_main(argv=None):
    """``sesdf-audit-rules-check FILE``: exit 0 good, 1 bad lines (on stderr), 2 usage or unreadable file."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        sys.stderr.write("usage: sesdf-audit-rules-check FILE\n")
        return 2
    try:
        with open(args[0], encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        sys.stderr.write(f"cannot read {args[0]}: {exc}\n")
        return 2
    problems = check_text(text)
    for problem in problems:
        sys.stderr.write(problem + "\n")
    if not problems:
        sys.stdout.write(f"{os.path.basename(args[0])}: {count_rules(text)} rules OK\n")
    return 1 if problems else 0
