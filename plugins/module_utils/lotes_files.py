# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File mode of the lotes export: the lote files the operator saved from the PEC into the inbox, each checked by its
LEDI content, delivered (lotes_delivery) and recorded; the PEC's database is only read.

Python stdlib only.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time

from ansible_collections.sesdf.esus.plugins.module_utils import _paths, ledi, lotes_records
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import sha256_file
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import local_now_iso
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_delivery import deliver, destination_ready, new_result
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

# the inbox where the operator (or a share) drops the lote files the PEC's "Salvar em arquivo" gave the browser (a real
# PEC writes no lote directory): RAS_Lote<N>_<dd-mm-yyyy>--<HH-MM>.zip
DEFAULT_FILES_DIR = _paths.LOTES_INBOX
DEFAULT_FILES_GLOB = "RAS_Lote*.zip"
UUIDS_DIR = "registros-dos-arquivos"
DEFAULT_SETTLE_SECONDS = 120
# names a file still being written (or an editor's / browser's temporary) has: skipped, never rejected
TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".swp", "~")


def validate_lote_file(path, cnes=None):
    """(info, None) for a valid LEDI lote file, or (None, reason) with the reason in Portuguese, for the operator.

    The content decides, not the name: every ``.esus`` entry decoded strictly as a LEDI DadoTransporteThrift
    (ledi.read_lote_file), every record's CNES the UBS's, INE and 7-digit IBGE well formed, uuids unique."""
    try:
        if os.path.getsize(path) == 0:
            return None, "arquivo vazio (0 bytes)"
        return ledi.read_lote_file(path, cnes=cnes or None), None
    except ledi.LediError as exc:
        return None, exc.reason
    except OSError as exc:
        return None, f"arquivo ilegível: {exc.strerror or exc}"


def scan_lote_files(directory, pattern=DEFAULT_FILES_GLOB, settle_seconds=DEFAULT_SETTLE_SECONDS, now=None):
    """The files of ``directory`` matching ``pattern``: (ready [{name, path, size, mtime}], skipped [{file, reason}]).

    A hidden or temporary name, or a file modified less than ``settle_seconds`` ago (still being written), is
    skipped for this run; it is looked at again next run. A directory that does not exist holds nothing; raises
    PecError when it cannot be read."""
    now = time.time() if now is None else now
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return [], []  # no inbox yet (the role creates it): nothing was dropped there
    except OSError as exc:
        raise PecError(
            f"a caixa de entrada dos lotes {directory} não pode ser lida ({exc.strerror or exc}); confira "
            "lotes_export_files_dir (a pasta onde se colocam os arquivos RAS_Lote*.zip salvos do PEC)"
        ) from exc
    ready, skipped = [], []
    for name in names:
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        if name.startswith(".") or name.lower().endswith(TEMP_SUFFIXES):
            skipped.append({"file": name, "reason": "nome oculto ou temporário (arquivo ainda sendo gravado)"})
            continue
        path = os.path.join(directory, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            skipped.append({"file": name, "reason": "não é um arquivo comum"})
            continue
        age = now - info.st_mtime
        if age < settle_seconds:
            skipped.append(
                {
                    "file": name,
                    "reason": f"modificado há {max(int(age), 0)} s (menos de {settle_seconds} s): "
                    "pode estar sendo gravado, fica para a próxima execução",
                }
            )
            continue
        ready.append({"name": name, "path": path, "size": info.st_size, "mtime": info.st_mtime})
    return ready, skipped


def file_dest_name(name, digest, cnes=None):
    """The name a PEC lote file gets at the destination: the UBS's CNES, the PEC's name and the first 12 hex digits
    of its sha256 (two different files the PEC or an operator saved under one name never overwrite each other)."""
    stem, ext = os.path.splitext(name)
    prefix = f"{cnes}-" if cnes and not stem.startswith(str(cnes)) else ""
    return f"{prefix}{stem}-{digest[:12]}{ext}"


FILE_DEST_NAMES = r"(?:[0-9]+-)?[A-Za-z0-9._-]+-[0-9a-f]{12}\.[A-Za-z0-9]+"


class FileExporter:
    """File mode: every valid lote file of the inbox delivered, verified, recorded; the PEC untouched.

    The ledger section ``files`` is keyed by sha256: a file is sent until its arrival is verified, and never again
    once it is, whatever name it has in the directory (renamed or re-saved identically). Invalid files are reported
    and left where they are."""

    def __init__(
        self,
        ledger,
        destination,
        files_dir=DEFAULT_FILES_DIR,
        pattern=DEFAULT_FILES_GLOB,
        settle_seconds=DEFAULT_SETTLE_SECONDS,
        cnes=None,
        transfer=True,
        reverify=True,
        check_mode=False,
        log=None,
        now=None,
        known_records=None,
    ):
        self.ledger = ledger
        self.known_records = known_records
        self._uuids = {}
        self.dest = destination
        self.files_dir = files_dir
        self.pattern = pattern
        self.settle_seconds = int(settle_seconds)
        self.cnes = cnes or None
        self.transfer = transfer
        self.reverify = reverify
        self.check_mode = check_mode
        self.log = log or (lambda msg: None)
        self.now = now
        self.result = new_result(
            files={"dir": files_dir, "glob": pattern, "to_send": [], "already_sent": [], "invalid": [], "skipped": []}
        )

    def _save(self):
        if not self.check_mode:
            self.ledger.save()
            self.result["changed"] = True

    def uuids_of(self, entry):
        """The record ids of a file in the ledger (kept beside it when it was accepted)."""
        if entry["sha256"] not in self._uuids:
            path = entry.get("uuids_file")
            self._uuids[entry["sha256"]] = (
                lotes_records.read_uuids(os.path.join(self.ledger.state_dir, path)) if path else set()
            )
        return self._uuids[entry["sha256"]]

    def _cross_check(self, info, digest):
        """Why a valid file must still not be sent (None: send it): records this PEC does not hold, or records
        already in another lote file (nothing is sent twice)."""
        ids = set(info["uuids"])
        if self.known_records is not None:
            foreign = ids - self.known_records
            if foreign:
                return (
                    f"{len(foreign)} registro(s) do arquivo não estão no banco deste PEC (ex.: {min(foreign)}): "
                    "lote de outro servidor?"
                )
        for other in self.ledger.files.values():
            if other["sha256"] == digest:
                continue
            overlap = ids & self.uuids_of(other)
            if overlap:
                state = "já entregue" if other.get("confirmed_at") else "ainda não confirmado"
                return (
                    f"{len(overlap)} de {len(ids)} registro(s) já estão no lote {other['file']} ({state}): "
                    "nada é enviado duas vezes; tire este arquivo da pasta"
                )
        return None

    def run(self):
        res = self.result
        files = res["files"]
        present = {}
        try:
            ready, files["skipped"] = scan_lote_files(self.files_dir, self.pattern, self.settle_seconds, self.now)
        except PecError as exc:
            ready = []
            res["errors"].append({"file": None, "msg": exc.msg})
        dirty = False
        for item in ready:
            try:
                digest = sha256_file(item["path"])
            except OSError as exc:
                files["skipped"].append({"file": item["name"], "reason": f"ilegível agora: {exc.strerror or exc}"})
                continue
            entry = self.ledger.files.get(digest)
            if entry is None:
                info, reason = validate_lote_file(item["path"], self.cnes)
                reason = reason or self._cross_check(info, digest)
                if reason:
                    files["invalid"].append({"file": item["name"], "reason": reason})
                    self.log(f"lote {item['name']} recusado: {reason} (deixado onde está, não enviado)")
                    continue
                entry = {
                    "id": digest,
                    "sha256": digest,
                    "file": item["name"],
                    "names": [item["name"]],
                    "dest_file": file_dest_name(item["name"], digest, self.cnes),
                    "size": item["size"],
                    "records": info["entries"],
                    "records_by_type": {str(k): v for k, v in sorted(info["records_by_type"].items())},
                    "lote_numbers": info.get("lote_numbers") or [],
                    "exported_at": (ledi.parse_lote_name(item["name"]) or {}).get("exported_at"),
                    "uuids_file": f"{UUIDS_DIR}/{digest}.txt",
                    "first_seen_at": local_now_iso(),
                    "sent_at": None,
                    "confirmed_at": None,
                    "attempts": 0,
                    "last_error": None,
                }
                if not self.check_mode:
                    lotes_records.write_uuids(os.path.join(self.ledger.state_dir, entry["uuids_file"]), info["uuids"])
                self._uuids[digest] = set(info["uuids"])
                self.ledger.files[digest] = entry
                dirty = True
            elif item["name"] not in entry["names"]:
                entry["names"].append(item["name"])
                dirty = True
            present.setdefault(digest, item)
            if entry.get("confirmed_at"):
                files["already_sent"].append(item["name"])
        if dirty:
            self._save()
        unconfirmed = [e for e in self.ledger.files.values() if not e.get("confirmed_at")]
        for entry in unconfirmed:
            if entry["sha256"] not in present:
                res["errors"].append(
                    {
                        "file": entry["file"],
                        "msg": f"o lote {entry['file']} (sha256 {entry['sha256'][:12]}) ainda não foi confirmado no "
                        f"destino e não está mais em {self.files_dir} (ou ainda não assentou): recoloque o arquivo lá",
                    }
                )
        sendable = [e for e in unconfirmed if e["sha256"] in present]
        files["to_send"] = [present[e["sha256"]]["name"] for e in sendable]
        dest_ok = destination_ready(self.dest, self.transfer, sendable, self.reverify, res, "file")
        if self.check_mode:
            res["sent"] = len(sendable) if dest_ok else 0
            res["changed"] = bool(sendable) or dirty
        elif dest_ok:
            for entry in sendable:
                self._deliver(entry, present[entry["sha256"]]["path"])
            if self.reverify:
                for entry in [e for e in self.ledger.files.values() if e.get("confirmed_at")]:
                    self._reverify(entry, present.get(entry["sha256"]))
        res["lotes"] = [
            {
                "id": e["sha256"],
                "file": e["file"],
                "dest_file": e["dest_file"],
                "names": e["names"],
                "records": e["records"],
                "sha256": e["sha256"],
                "confirmed": bool(e.get("confirmed_at")),
                "confirmed_at": e.get("confirmed_at"),
                "last_error": e.get("last_error"),
            }
            for e in sorted(self.ledger.files.values(), key=lambda e: (e["first_seen_at"], e["file"]))
        ]
        res["pending"] = sum(1 for e in self.ledger.files.values() if not e.get("confirmed_at"))
        return res

    def _deliver(self, entry, local, resend=False):
        return deliver(
            self.dest,
            entry,
            local,
            entry["dest_file"],
            self.result,
            lambda _entry: self._save(),
            {"file": entry["file"]},
            resend=resend,
            check_on_arrival=True,
            log=self.log,
        )

    def _reverify(self, entry, item):
        """A confirmed file whose copy at the destination was altered is sent again (from the PEC's file, when it
        is still there); one that disappeared is not (NCAIS moves files away once imported)."""
        try:
            arrived = self.dest.remote_sha256(entry["dest_file"])
        except PecError as exc:
            self.result["errors"].append({"file": entry["file"], "msg": exc.msg})
            return
        if arrived is None or arrived == entry["sha256"]:
            return
        if item is None:
            self.result["errors"].append(
                {
                    "file": entry["file"],
                    "msg": f"o lote {entry['file']} foi alterado no destino e o arquivo original não está mais em "
                    f"{self.files_dir}: reenvie-o à mão a partir de um backup",
                }
            )
            return
        self.log(f"lote {entry['file']}: alterado no destino (sha256 {arrived}); enviando de novo")
        entry["altered_detected_at"] = local_now_iso()
        entry["resent"] = entry.get("resent", 0) + 1
        if self._deliver(entry, item["path"], resend=True):
            self.result["resent"] += 1
        else:
            # what is at the destination is not what the PEC saved: pending (and the migration gate closed) until
            # a resend is verified, as db mode does
            entry["confirmed_at"] = None
            self._save()


def files_gate(
    ledger_data,
    files_dir=DEFAULT_FILES_DIR,
    pattern=DEFAULT_FILES_GLOB,
    settle_seconds=0,
    now=None,
    state_dir=None,
    reader=None,
    cnes=None,
):
    """File mode's "every lote sent", read-only: every record the database holds is in a lote file confirmed at the
    destination or (when observable) at a destination node (``records``, lotes_records.records_gate), and the inbox
    holds no file still to deliver, invalid or unsettled.

    With ``reader`` the records gate decides (``problems``) and the inbox's own state (files invalid, unsettled or not
    yet delivered: nothing of the database is missing when the gate is open) goes to ``warnings``; without it (no
    database) the inbox's state is the gate.

    Returns {dir, files, confirmed, unconfirmed [names], invalid [{file, reason}], skipped, records, problems,
    warnings}."""
    known = ((ledger_data or {}).get("files") or {}) if isinstance(ledger_data, dict) else {}
    out = {
        "dir": files_dir,
        "files": 0,
        "confirmed": 0,
        "unconfirmed": [],
        "invalid": [],
        "skipped": [],
        "records": None,
        "problems": [],
        "warnings": [],
    }
    inbox_problems = out["problems"]
    if reader is not None:
        inbox_problems = out["warnings"]
        db_ids, db_note, node_ids, node_note = lotes_records.observe_records(reader)

        def uuids_of(entry):
            path = entry.get("uuids_file")
            return lotes_records.read_uuids(os.path.join(state_dir, path)) if path and state_dir else set()

        delivered, waiting = lotes_records.delivered_by_files(known, uuids_of)
        out["records"] = lotes_records.records_gate(db_ids, delivered, waiting, node_ids, node_note)
        out["records"]["why"] = db_note
        out["problems"].extend(lotes_records.gate_problems(out["records"], files_dir))
    try:
        ready, out["skipped"] = scan_lote_files(files_dir, pattern, settle_seconds, now)
    except PecError as exc:
        inbox_problems.append(exc.msg)
        return out
    for item in ready:
        entry = known.get(sha256_file(item["path"]))
        if entry is None:
            _info, reason = validate_lote_file(item["path"], cnes)
            if reason:
                out["invalid"].append({"file": item["name"], "reason": reason})
                continue
        out["files"] += 1
        if entry and entry.get("confirmed_at"):
            out["confirmed"] += 1
        else:
            out["unconfirmed"].append(item["name"])
    out["unconfirmed"].extend(
        e.get("file") for e in known.values() if not e.get("confirmed_at") and e.get("file") not in out["unconfirmed"]
    )
    if out["unconfirmed"]:
        inbox_problems.append(
            f"lote files {', '.join(sorted(out['unconfirmed']))} in {files_dir} are not confirmed at the destination: "
            "rerun the lotes export (file mode) until every file is confirmed"
        )
    if out["skipped"]:
        inbox_problems.append(
            f"lote files {', '.join(s['file'] for s in out['skipped'])} in {files_dir} are still being written or "
            "temporary: wait and rerun the lotes export"
        )
    if out["invalid"]:
        inbox_problems.append(
            "invalid lote files in "
            + files_dir
            + ": "
            + "; ".join(f"{i['file']} ({i['reason']})" for i in out["invalid"])
            + ". Save the lote again from the PEC (Transmissão de dados → Gerar novo lote → Salvar em arquivo) and "
            "move the bad file out of the directory"
        )
    return out
