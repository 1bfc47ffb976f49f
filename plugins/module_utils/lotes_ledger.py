# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lotes ledger: the server's record of every lote exported and of its confirmation at the destination.

Python stdlib only. JSON written atomically; one run at a time (``lock``). Db mode keys its lotes by the PEC's lote
id (``lotes``); file mode keys the PEC's own lote files by sha256 (``files``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json, write_json
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

LEDGER_NAME = "ledger.json"
LEDGER_FORMAT = 1


class Ledger:
    """The server's record of every lote exported: file, sha256, sent, confirmed at the destination."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, LEDGER_NAME)
        self.files_dir = os.path.join(state_dir, "files")
        self.data = {"format": LEDGER_FORMAT, "lotes": {}}

    def prepare_dirs(self):
        for path in (self.state_dir, self.files_dir):
            try:
                os.makedirs(path, mode=0o700, exist_ok=True)
            except OSError as exc:
                raise PecError(f"cannot create {path}: {exc.strerror or exc}") from exc

    def load(self):
        try:
            data = read_json(self.path, "lotes ledger")
        except PecError as exc:
            raise PecError(
                f"the lotes ledger {self.path} is unreadable ({exc.__cause__}); do NOT delete it: restore it from the "
                "server backup, or move it aside and run again (lotes already confirmed would then be sent again)"
            ) from exc.__cause__
        if data is None:
            return self
        if not isinstance(data, dict) or not isinstance(data.get("lotes"), dict):
            raise PecError(f"the lotes ledger {self.path} has an unknown layout; restore it from the backup")
        self.data = data
        return self

    def save(self):
        write_json(self.path, self.data, 0o600)

    @property
    def lotes(self):
        return self.data["lotes"]

    def get(self, lote_id):
        return self.lotes.get(str(lote_id))

    def put(self, entry):
        self.lotes[str(entry["id"])] = entry

    @property
    def files(self):
        """File mode: the PEC's own lote files, keyed by sha256 (the same bytes under any name are one lote)."""
        return self.data.setdefault("files", {})

    @contextlib.contextmanager
    def lock(self):
        path = os.path.join(self.state_dir, ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise PecError(
                    f"another lotes export is running on this server (lock {path}); wait for it to finish"
                ) from exc
            yield
        finally:
            os.close(fd)
