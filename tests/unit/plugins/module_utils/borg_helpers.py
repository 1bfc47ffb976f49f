"""The UBS's side of a borg repository on a "backup host" in a temp directory, for the retention tests: its own borg
base directory, the repository reached only through the forced command of the backup host's authorized_keys line
(``borg serve --restrict-to-repository <repo> --append-only``, run by an SSH shim)."""

from __future__ import annotations

import datetime
import hashlib
import os
import subprocess

PASS = "Retention-Pass-Canary-7f3e"
CNES = "0020002"
PREFIX = f"esus-{CNES}-"


class Ubs:
    """The UBS's side: its own borg base directory, the repository only through an append-only ``borg serve``."""

    def __init__(self, tmp_path):
        self.repo = str(tmp_path / "srv" / f"ubs-{CNES}")
        self.base = str(tmp_path / "ubs-borg")
        shim = tmp_path / "fake-ssh"
        # what the backup host's authorized_keys forces, whatever the client asks for
        shim.write_text(f"#!/bin/sh\nexec borg serve --restrict-to-repository {self.repo} --append-only\n")
        shim.chmod(0o755)
        self.location = f"ssh://borg@backup-host{self.repo}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BORG_")},
            "BORG_RSH": str(shim),
            "BORG_PASSPHRASE": PASS,
            "BORG_BASE_DIR": self.base,
        }
        self.sent = {}

    def borg(self, *args, stdin=None, check=True):
        proc = subprocess.run(["borg", *args], input=stdin, env=self.env, capture_output=True, check=False, timeout=300)
        if check and proc.returncode not in (0, 1):
            raise AssertionError(f"borg {args[0]} failed: {proc.stderr.decode()}")
        return proc

    def init(self):
        os.makedirs(os.path.dirname(self.repo), mode=0o700, exist_ok=True)
        self.borg("init", "--encryption=repokey-blake2", self.location)

    def send(self, day, data=None, name=None, checkpoint=False):
        """One day's dump (``day``: 1..31 of January 2026, or a datetime), as the daily job sends it."""
        when = day if isinstance(day, datetime.datetime) else datetime.datetime(2026, 1, day, 2, 30)
        name = name or f"{PREFIX}diario-{when:%Y%m%dT%H%M%S}Z"
        data = data if data is not None else os.urandom(60_000) + name.encode()
        extra = ["--checkpoint-interval", "1"] if checkpoint else []
        if checkpoint:
            # a dump that takes longer than the checkpoint interval: borg commits a checkpoint, then removes it
            script = "import sys, time; d = sys.stdin.buffer.read(); h = len(d) // 2; "
            script += (
                "sys.stdout.buffer.write(d[:h]); sys.stdout.flush(); time.sleep(2.5); sys.stdout.buffer.write(d[h:])"
            )
            producer = subprocess.Popen(["python3", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            create = subprocess.Popen(
                ["borg", "create", *extra, "--stdin-name", "esus.pgdump", "--timestamp", f"{when:%Y-%m-%dT%H:%M:%S}",
                 f"{self.location}::{name}", "-"],
                stdin=producer.stdout, env=self.env, stderr=subprocess.PIPE,
            )  # fmt: skip
            producer.stdin.write(data)
            producer.stdin.close()
            producer.stdout.close()
            _out, err = create.communicate(timeout=300)
            producer.wait(timeout=60)
            assert create.returncode in (0, 1), err.decode()
        else:
            self.borg(
                "create", "--stdin-name", "esus.pgdump", "--timestamp", f"{when:%Y-%m-%dT%H:%M:%S}",
                f"{self.location}::{name}", "-", stdin=data,
            )  # fmt: skip
        self.sent[name] = hashlib.sha256(data).hexdigest()
        return name

    def delete(self, name):
        """What a compromised UBS can do with its key: borg marks the archive deleted (append-only)."""
        proc = self.borg("delete", f"{self.location}::{name}", check=False)
        assert proc.returncode == 0, proc.stderr.decode()

    def names(self):
        out = self.borg("list", "--short", self.location).stdout.decode()
        return out.split()
