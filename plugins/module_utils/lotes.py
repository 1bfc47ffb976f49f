# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Export of the PEC's production not yet sent ("lotes") and their transfer to NCAIS, without loss.

One implementation used by the ``sesdf.esus.pec_lotes`` module and by the cron entry point that inapt UBS
run without Ansible (``cli_main``). Python stdlib only.

Safety rules:
- a lote is created in the database (tb_lote_transp, rows of tb_dado_transp tied to it) in one statement;
  its file can always be rebuilt from those rows, so a crash after the commit loses nothing;
- files are written to a temporary name, fsynced and renamed (never a half file under a final name),
  both on the server and at the destination;
- a lote counts as delivered only when the sha256 of the file AT THE DESTINATION equals the manifest's;
  the ledger (JSON, written atomically) records that, so a lote is sent again until it is verified and
  never again once it is (unless the copy at the destination is later found altered).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import fnmatch
import io
import json
import os
import re
import stat
import sys
import time
import zipfile

from ansible_collections.sesdf.esus.plugins.module_utils import _paths, ledi, lotes_records
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import (
    atomic_write,
    read_json,
    sha256_bytes,
    sha256_file,
    write_json,
)
from ansible_collections.sesdf.esus.plugins.module_utils._job import (
    EXIT_FAILED,
    EXIT_OK,
    ConfigError,
    JobLog,
    read_config,
    write_status_quiet,
)
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import cds_deadline, local_now_iso, next_month
from ansible_collections.sesdf.esus.plugins.module_utils._transfer import PathDestination, RsyncDestination
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import Probe
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import write_state

LEDGER_NAME = "ledger.json"
LEDGER_FORMAT = 1
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
DEFAULT_FILE_PATTERN = "lote-{cnes}-{id}.zip"
JOB_TAG = "sesdf-esus-lotes"
EXIT_PENDING = 2
SOURCES = ("auto", "db", "files")
# file mode: the inbox where the operator (or a share) drops the lote files the PEC's "Salvar em arquivo" gave the
# browser (a real PEC writes no lote directory): RAS_Lote<N>_<dd-mm-yyyy>--<HH-MM>.zip
DEFAULT_FILES_DIR = _paths.LOTES_INBOX
DEFAULT_FILES_GLOB = "RAS_Lote*.zip"
UUIDS_DIR = "registros-dos-arquivos"
DEFAULT_SETTLE_SECONDS = 120
# names a file still being written (or an editor's / browser's temporary) has: skipped, never rejected
TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".swp", "~")


# Files ---------------------------------------------------------------------------------------------


def build_lote_zip(rows):
    """The LEDI lote file: a zip of ``<uuid>.esus`` entries, each the row's DadoTransporte bytes.

    Deterministic (fixed dates, rows in the given order), so a lote rebuilt from the database has the
    same sha256 as the first build.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for row in rows:
            info = zipfile.ZipInfo(f"{row['uuid']}.esus", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, row["data"])
    return buffer.getvalue()


def read_lote_zip(data):
    """{uuid: bytes} of a lote file (used to verify content)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name[: -len(".esus")]: archive.read(name) for name in archive.namelist()}


# Ledger --------------------------------------------------------------------------------------------


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


# Database ------------------------------------------------------------------------------------------


class LotesDb:
    """The PEC's transmission tables, through a PgClient."""

    def __init__(self, client, generated="GERADO", sent="ENVIADO", export_situations=("GERADO",)):
        self.client = client
        self.names = {"generated": generated, "sent": sent}
        self.export_situations = list(export_situations)
        self._codes = None

    def codes(self):
        if self._codes is None:
            rows = self.client.query("SELECT no_situacao, co_situacao FROM tb_situacao_lote_transp")
            self._codes = {name: int(code) for name, code in rows}
            for name in [*self.names.values(), *self.export_situations]:
                if name not in self._codes:
                    raise PecError(
                        f"tb_situacao_lote_transp has no situation {name!r} (it has {', '.join(sorted(self._codes))}); "
                        "set the lote situation names for this PEC version"
                    )
        return self._codes

    def pending_count(self):
        return int(self.client.scalar("SELECT count(*) FROM tb_dado_transp WHERE co_lote_transp IS NULL"))

    def create_lote(self, max_records=0):
        """Tie rows with no lote to a new GERADO lote, in one statement. Returns the lote id or None."""
        limit = f"LIMIT {int(max_records)}" if max_records and int(max_records) > 0 else ""
        code = self.codes()[self.names["generated"]]
        sql = f"""
WITH pend AS (
    SELECT co_seq_dado_transp, dt_registro FROM tb_dado_transp
    WHERE co_lote_transp IS NULL ORDER BY co_seq_dado_transp {limit} FOR UPDATE SKIP LOCKED),
lt AS (
    INSERT INTO tb_lote_transp (dt_geracao, dt_inicio_periodo, dt_fim_periodo, co_situacao, qt_registros)
    SELECT now(), min(dt_registro)::date, max(dt_registro)::date, {code}, count(*) FROM pend HAVING count(*) > 0
    RETURNING co_seq_lote_transp),
upd AS (
    UPDATE tb_dado_transp d SET co_lote_transp = lt.co_seq_lote_transp FROM lt, pend
    WHERE d.co_seq_dado_transp = pend.co_seq_dado_transp RETURNING d.co_seq_dado_transp)
SELECT lt.co_seq_lote_transp, (SELECT count(*) FROM upd) FROM lt
"""
        rows = self.client.query(sql)
        return int(rows[0][0]) if rows else None

    def open_lotes(self):
        """Lotes the PEC has not sent (situations in export_situations), oldest first."""
        codes = self.codes()
        wanted = ", ".join(str(codes[n]) for n in self.export_situations)
        rows = self.client.query(
            f"SELECT co_seq_lote_transp FROM tb_lote_transp WHERE co_situacao IN ({wanted}) ORDER BY co_seq_lote_transp"
        )
        return [int(r[0]) for r in rows]

    def lote(self, lote_id):
        """A lote's header and rows (uuid, bytes, cnes, date), in row order."""
        head = self.client.query(
            "SELECT dt_inicio_periodo, dt_fim_periodo, qt_registros, co_situacao, to_char(dt_geracao, "
            f"'YYYY-MM-DD\"T\"HH24:MI:SS') FROM tb_lote_transp WHERE co_seq_lote_transp = {int(lote_id)}"
        )
        if not head:
            raise PecError(f"lote {lote_id} is in the ledger but not in tb_lote_transp; restore the database backup")
        rows = self.client.query(
            "SELECT d.nu_uuid, translate(encode(d.ds_dado, 'base64'), E'\\n', ''), u.nu_cnes, "
            "to_char(d.dt_registro, 'YYYY-MM-DD') FROM tb_dado_transp d "
            "JOIN tb_unidade_saude u ON u.co_seq_unidade_saude = d.co_unidade_saude "
            f"WHERE d.co_lote_transp = {int(lote_id)} ORDER BY d.co_seq_dado_transp",
            record=False,
        )
        start, end, count, situation, generated_at = head[0]
        return {
            "id": int(lote_id),
            "period": {"start": start, "end": end},
            "declared_records": int(count),
            "situation": int(situation),
            "generated_at": generated_at,
            "rows": [{"uuid": r[0], "data": base64.b64decode(r[1]), "cnes": r[2], "date": r[3]} for r in rows],
        }

    def mark_sent(self, lote_id):
        codes = self.codes()
        sent = codes[self.names["sent"]]
        rows = self.client.query(
            f"UPDATE tb_lote_transp SET co_situacao = {sent}, dt_envio = now() "
            f"WHERE co_seq_lote_transp = {int(lote_id)} AND co_situacao <> {sent} RETURNING co_seq_lote_transp"
        )
        return bool(rows)

    def month_production(self, first_day, next_first_day):
        """Rows of a month per unit CNES and lote: [(cnes, lote_id|None, situation|None, dt_envio|None, n)]."""
        rows = self.client.query(
            "SELECT u.nu_cnes, d.co_lote_transp, l.co_situacao, to_char(l.dt_envio, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
            "count(*) FROM tb_dado_transp d "
            "JOIN tb_unidade_saude u ON u.co_seq_unidade_saude = d.co_unidade_saude "
            "LEFT JOIN tb_lote_transp l ON l.co_seq_lote_transp = d.co_lote_transp "
            f"WHERE d.dt_registro >= '{first_day.isoformat()}' AND d.dt_registro < '{next_first_day.isoformat()}' "
            "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2"
        )
        return [
            (r[0], int(r[1]) if r[1] is not None else None, int(r[2]) if r[2] is not None else None, r[3], int(r[4]))
            for r in rows
        ]


# Destinations ----------------------------------------------------------------------------------------


def lote_names(file_pattern=DEFAULT_FILE_PATTERN):
    """The regex of the names a lote and its manifest get at the destination (from ``file_pattern``)."""

    def body(pattern):
        return "[A-Za-z0-9._-]+".join(re.escape(part) for part in re.split(r"\{[a-z_]+\}", pattern))

    base = file_pattern[:-4] if file_pattern.endswith(".zip") else file_pattern
    return f"{body(file_pattern)}|{body(base)}\\.manifest\\.json"


def make_destination(spec, file_pattern=DEFAULT_FILE_PATTERN, ours=None):
    """Destination from a dict: {type: path, path} or {type: rsync, host, path, user, port, ssh_key, known_hosts}.

    A path destination removes the stale partials of this collection's lotes left there by a killed copy
    (``ours``: the regex of their final names; default the names ``file_pattern`` gives)."""
    if not spec or not spec.get("type"):
        raise PecError("no destination for the lotes: set lotes_export_destination (type path or rsync)")
    kind = spec["type"]
    if kind == "path":
        if not spec.get("path"):
            raise PecError("destination type path needs 'path'")
        return PathDestination(spec["path"], bool(spec.get("require_mount")), ours=ours or lote_names(file_pattern))
    if kind == "rsync":
        if not spec.get("host") or not spec.get("path"):
            raise PecError("destination type rsync needs 'host' and 'path'")
        return RsyncDestination(
            spec["host"],
            spec["path"],
            spec.get("user"),
            spec.get("port") or 22,
            spec.get("ssh_key"),
            spec.get("known_hosts"),
            spec.get("timeout") or 60,
            spec.get("strict_host_key_checking", True),
        )
    raise PecError(f"unknown destination type {kind!r}: use path or rsync")


# The export run ------------------------------------------------------------------------------------


def _months(rows):
    months = {}
    for row in rows:
        key = row["date"][:7]
        months[key] = months.get(key, 0) + 1
    return months


class Exporter:
    """One run: create lotes from pending rows, write files and manifests, transfer, verify, record."""

    def __init__(
        self,
        db,
        ledger,
        destination,
        cnes=None,
        file_pattern=DEFAULT_FILE_PATTERN,
        max_records=0,
        export=True,
        transfer=True,
        reverify=True,
        check_mode=False,
        log=None,
    ):
        self.db = db
        self.ledger = ledger
        self.dest = destination
        self.cnes = cnes
        self.file_pattern = file_pattern
        self.max_records = max_records
        self.export = export
        self.transfer = transfer
        self.reverify = reverify
        self.check_mode = check_mode
        self.log = log or (lambda msg: None)
        self.result = {
            "exported": 0,
            "sent": 0,
            "confirmed": 0,
            "resent": 0,
            "pending": 0,
            "pending_records_before": 0,
            "errors": [],
            "lotes": [],
            "changed": False,
        }

    # -- files
    def _names(self, lote):
        cnes = self.cnes or (lote["rows"][0]["cnes"] if lote["rows"] else "0000000")
        name = self.file_pattern.format(
            id=lote["id"], cnes=cnes, start=lote["period"]["start"], end=lote["period"]["end"]
        )
        base = name[:-4] if name.endswith(".zip") else name
        return name, base + ".manifest.json"

    def _materialize(self, lote_id):
        """Make sure the lote's zip and manifest exist on the server and match the ledger; returns the entry."""
        entry = self.ledger.get(lote_id)
        if entry and entry.get("confirmed_at"):
            return entry
        if entry:
            path = os.path.join(self.ledger.files_dir, entry["file"])
            mpath = os.path.join(self.ledger.files_dir, entry["manifest"])
            if os.path.isfile(path) and os.path.isfile(mpath) and sha256_file(path) == entry["sha256"]:
                return entry
        lote = self.db.lote(lote_id)
        if not lote["rows"]:
            self.log(f"lote {lote_id}: no rows in tb_dado_transp; skipped")
            return None
        data = build_lote_zip(lote["rows"])
        name, mname = self._names(lote)
        digest = sha256_bytes(data)
        manifest = {
            "id": lote["id"],
            "file": name,
            "period": lote["period"],
            "records": len(lote["rows"]),
            "sha256": digest,
            "size": len(data),
            "cnes": sorted({r["cnes"] for r in lote["rows"]}),
            "months": _months(lote["rows"]),
            "generated_at": lote["generated_at"],
            "layout": "LEDI: zip of <uuid>.esus entries, DadoTransporteThrift (TBinaryProtocol)",
        }
        new = {
            **(entry or {}),
            **manifest,
            "manifest": mname,
            "sent_at": None,
            "confirmed_at": None,
            "attempts": (entry or {}).get("attempts", 0),
            "last_error": None,
            "db_marked_sent": False,
        }
        if self.check_mode:
            return new
        atomic_write(os.path.join(self.ledger.files_dir, name), data, 0o600)
        write_json(os.path.join(self.ledger.files_dir, mname), manifest, 0o600)
        self.ledger.put(new)
        self.ledger.save()
        self.result["changed"] = True
        return new

    # -- transfer
    def _deliver(self, entry, resend=False):
        local = os.path.join(self.ledger.files_dir, entry["file"])
        mlocal = os.path.join(self.ledger.files_dir, entry["manifest"])
        msha = sha256_file(mlocal)
        try:
            if resend or self.dest.remote_sha256(entry["file"]) != entry["sha256"]:
                if self.check_mode:
                    self.result["sent"] += 1
                    return False
                entry["attempts"] = entry.get("attempts", 0) + 1
                entry["sent_at"] = local_now_iso()
                self.dest.put(local, entry["file"])
                self.result["sent"] += 1
                self.result["changed"] = True
            if self.dest.remote_sha256(entry["manifest"]) != msha:
                if self.check_mode:
                    return False
                self.dest.put(mlocal, entry["manifest"])
                self.result["changed"] = True
            arrived = self.dest.remote_sha256(entry["file"])
            if arrived != entry["sha256"]:
                raise PecError(
                    f"lote {entry['id']}: sha256 at the destination ({arrived}) differs from the "
                    f"manifest ({entry['sha256']}); it will be sent again"
                )
        except PecError as exc:
            entry["last_error"] = exc.msg
            self.result["errors"].append({"lote": entry["id"], "msg": exc.msg})
            if not self.check_mode:
                self.ledger.put(entry)
                self.ledger.save()
            return False
        if self.check_mode:
            return True
        entry["confirmed_at"] = local_now_iso()
        entry["last_error"] = None
        entry["destination"] = self.dest.label
        self.ledger.put(entry)
        self.ledger.save()
        self.result["confirmed"] += 1
        self.result["changed"] = True
        return True

    def _mark_db(self, entry):
        if entry.get("confirmed_at") and not entry.get("db_marked_sent") and not self.check_mode:
            self.db.mark_sent(entry["id"])
            entry["db_marked_sent"] = True
            self.ledger.put(entry)
            self.ledger.save()
            self.result["changed"] = True

    def run(self):
        res = self.result
        if not self.check_mode:
            self._clean_temporaries()
        res["pending_records_before"] = self.db.pending_count()
        # 1. new lotes from rows with no lote
        if self.export and res["pending_records_before"]:
            if self.check_mode:
                per = self.max_records or res["pending_records_before"]
                res["exported"] = -(-res["pending_records_before"] // per)
                res["changed"] = True
            else:
                while True:
                    lote_id = self.db.create_lote(self.max_records)
                    if lote_id is None:
                        break
                    res["exported"] += 1
                    res["changed"] = True
                    self.log(f"lote {lote_id} created")
                    self._materialize(lote_id)
        # 2. every open lote (ours from an interrupted run, or made in the PEC's UI) and unconfirmed ledger entries
        ids = set(self.db.open_lotes()) if self.export or self.transfer else set()
        ids |= {int(k) for k, e in self.ledger.lotes.items() if not e.get("confirmed_at")}
        entries = []
        for lote_id in sorted(ids):
            entry = self.ledger.get(lote_id)
            if entry and entry.get("confirmed_at"):
                self._mark_db(entry)
                continue
            entry = self._materialize(lote_id)
            if entry is not None:
                entries.append(entry)
        # 3. transfer and verify
        dest_ok = False
        if self.transfer and (entries or self.reverify):
            try:
                self.dest.check()
                dest_ok = True
            except PecError as exc:
                if entries:
                    res["errors"].append({"lote": None, "msg": exc.msg})
        if dest_ok and self.check_mode:
            res["sent"] = len(entries)
        elif dest_ok:
            for entry in entries:
                if self._deliver(entry):
                    self._mark_db(entry)
            if self.reverify:
                for entry in [e for e in self.ledger.lotes.values() if e.get("confirmed_at")]:
                    self._reverify(entry)
        # 4. confirmed in the ledger but still open in the PEC (interrupted after the ledger write)
        for entry in list(self.ledger.lotes.values()):
            if entry.get("confirmed_at") and not entry.get("db_marked_sent"):
                self._mark_db(entry)
        res["lotes"] = [
            {
                "id": e["id"],
                "file": e["file"],
                "records": e["records"],
                "sha256": e["sha256"],
                "period": e.get("period"),
                "confirmed": bool(e.get("confirmed_at")),
                "confirmed_at": e.get("confirmed_at"),
                "last_error": e.get("last_error"),
            }
            for e in sorted(self.ledger.lotes.values(), key=lambda e: e["id"])
        ]
        res["pending"] = sum(1 for e in self.ledger.lotes.values() if not e.get("confirmed_at"))
        if self.check_mode:
            res["pending"] += res["exported"]
        return res

    def _clean_temporaries(self):
        """Temporary files left by a run killed mid-write (never a final name)."""
        with contextlib.suppress(OSError):
            for name in os.listdir(self.ledger.files_dir):
                if name.startswith(".") and name.endswith(".tmp"):
                    os.unlink(os.path.join(self.ledger.files_dir, name))

    def _reverify(self, entry):
        """A confirmed lote whose copy at the destination no longer matches is sent again.

        A file absent at the destination is not resent: NCAIS moves files away once imported.
        """
        try:
            arrived = self.dest.remote_sha256(entry["file"])
        except PecError as exc:
            res = self.result
            res["errors"].append({"lote": entry["id"], "msg": exc.msg})
            return
        if arrived is None or arrived == entry["sha256"]:
            return
        local = os.path.join(self.ledger.files_dir, entry["file"])
        if not os.path.isfile(local) or sha256_file(local) != entry["sha256"]:
            lote = self.db.lote(entry["id"])
            data = build_lote_zip(lote["rows"])
            if sha256_bytes(data) != entry["sha256"]:
                self.result["errors"].append(
                    {
                        "lote": entry["id"],
                        "msg": (
                            f"lote {entry['id']} is altered at the destination and cannot be rebuilt "
                            "identically from the database; send it by hand from a backup"
                        ),
                    }
                )
                return
            if not self.check_mode:
                atomic_write(local, data, 0o600)
        self.log(f"lote {entry['id']}: altered at the destination (sha256 {arrived}); sending it again")
        entry["altered_detected_at"] = local_now_iso()
        entry["resent"] = entry.get("resent", 0) + 1
        confirmed_at = entry["confirmed_at"]
        if self._deliver(entry, resend=True):
            self.result["resent"] += 1
        else:
            entry["confirmed_at"] = None if not self.check_mode else confirmed_at
            if not self.check_mode:
                self.ledger.put(entry)
                self.ledger.save()


# File mode: the lote files saved from the PEC into the inbox ---------------------------------------------


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
        self.result = {
            "exported": 0,
            "sent": 0,
            "confirmed": 0,
            "resent": 0,
            "pending": 0,
            "errors": [],
            "lotes": [],
            "changed": False,
            "files": {
                "dir": files_dir,
                "glob": pattern,
                "to_send": [],
                "already_sent": [],
                "invalid": [],
                "skipped": [],
            },
        }

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
        dest_ok = False
        if self.transfer and (sendable or self.reverify):
            try:
                self.dest.check()
                dest_ok = True
            except PecError as exc:
                if sendable:
                    res["errors"].append({"file": None, "msg": exc.msg})
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
        """Copy (unless already there, e.g. a run killed after the copy), read the sha256 back, record."""
        name = entry["dest_file"]
        try:
            if resend or self.dest.remote_sha256(name) != entry["sha256"]:
                entry["attempts"] = entry.get("attempts", 0) + 1
                entry["sent_at"] = local_now_iso()
                self.dest.put(local, name, expected_sha256=entry["sha256"], what=f"cópia do lote {entry['file']}")
                self.result["sent"] += 1
                self.result["changed"] = True
            arrived = self.dest.remote_sha256(name)
            if arrived != entry["sha256"]:
                raise PecError(
                    f"o lote {entry['file']} chegou ao destino com sha256 {arrived}, esperado {entry['sha256']}; "
                    "será enviado de novo na próxima execução"
                )
        except PecError as exc:
            entry["last_error"] = exc.msg
            self.result["errors"].append({"file": entry["file"], "msg": exc.msg})
            self._save()
            return False
        entry["confirmed_at"] = local_now_iso()
        entry["last_error"] = None
        entry["destination"] = self.dest.label
        self._save()
        self.result["confirmed"] += 1
        self.log(f"lote {entry['file']} confirmado em {self.dest.label} como {name}")
        return True

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
        db_ids, db_note, node_ids, node_note = observe_records(reader)

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


# CDS deadline ---------------------------------------------------------------------------------------


def previous_month(today):
    first = today.replace(day=1)
    last_prev = first - datetime.timedelta(days=1)
    return last_prev.replace(day=1)


def deadline_status(month_rows, ledger_lotes, today, month_first, deadline_day=10, sent_code=None):
    """Per UBS (CNES): was all production of month ``month_first`` exported and confirmed by the deadline?

    month_rows: LotesDb.month_production output. ledger_lotes: ledger entries by id (str). A lote counts
    as confirmed when the ledger confirms it, or when the PEC itself marked it sent (``sent_code``).
    """
    year, month = month_first.year, month_first.month
    deadline = cds_deadline(month_first, deadline_day)
    per_unit = {}
    for cnes, lote_id, situation, sent_at, count in month_rows:
        unit = per_unit.setdefault(
            cnes, {"cnes": cnes, "records": 0, "confirmed_records": 0, "last_confirmed_at": None}
        )
        unit["records"] += count
        entry = ledger_lotes.get(str(lote_id)) if lote_id is not None else None
        confirmed_at = entry.get("confirmed_at") if entry else None
        if confirmed_at is None and sent_code is not None and situation == sent_code and sent_at:
            confirmed_at = sent_at
        if confirmed_at:
            unit["confirmed_records"] += count
            if unit["last_confirmed_at"] is None or confirmed_at > unit["last_confirmed_at"]:
                unit["last_confirmed_at"] = confirmed_at
    days_left = (deadline - today).days
    units = []
    for unit in per_unit.values():
        complete = unit["confirmed_records"] == unit["records"]
        on_time = (
            complete
            and unit["last_confirmed_at"] is not None
            and unit["last_confirmed_at"][:10] <= deadline.isoformat()
        )
        status = lotes_records.deadline_state(complete, on_time, days_left)
        units.append(
            {
                **unit,
                "pending_records": unit["records"] - unit["confirmed_records"],
                "complete": complete,
                "on_time": on_time,
                "status": status,
            }
        )
    return {
        "month": f"{year:04d}-{month:02d}",
        "deadline": deadline.isoformat(),
        "today": today.isoformat(),
        "days_left": days_left,
        "units": sorted(units, key=lambda u: u["cnes"]),
        "ok": all(u["status"] == "em_dia" for u in units),
    }


# Entry points ----------------------------------------------------------------------------------------


def choose_source(probe, source="auto"):
    """(mode, verdicts): ``db`` or ``files``. ``auto`` is ``db`` only when the read-only probe says this server's
    schema supports both ``create_lotes`` and ``mark_lotes_sent``; otherwise ``files`` (the PEC's own lote files)."""
    source = source or "auto"
    if source not in SOURCES:
        raise PecError(f"unknown lotes source {source!r}: use auto, db or files")
    if source != "auto":
        return source, {}
    verdicts = {cap: probe.check(cap) for cap in ("create_lotes", "mark_lotes_sent")}
    return ("db" if all(v["supported"] for v in verdicts.values()) else "files"), verdicts


def run_export(client, options, check_mode=False, log=None):
    """Everything one run does; used by the module and the cron entry point. Returns the result dict.

    ``options["source"]``: ``db`` (the collection creates the lotes in the PEC's tables and marks them sent; the
    default of a configuration that names no source), ``files`` (the lote files saved from the PEC into the inbox,
    nothing written in the PEC's tables) or ``auto`` (see choose_source). The mode chosen is ``result["source"]``."""
    options = dict(options)
    for key in ("max_records_per_lote", "deadline_day"):
        options[key] = int(options.get(key) or 0)
    for key in ("export", "transfer", "reverify_confirmed"):
        value = options.get(key, True)
        options[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    # Read-only probe of the live schema before anything is written (check mode too): refused, nothing changes.
    probe = Probe(
        client,
        situations={
            "generated": options.get("situation_generated", "GERADO"),
            "sent": options.get("situation_sent", "ENVIADO"),
        },
        trust=options.get("schema_trust") or "survey",
        surveyed=options.get("capability_profiles"),
    )
    source, verdicts = choose_source(probe, options.get("source") or "db")
    if source == "files":
        result = run_file_export(client, options, check_mode=check_mode, log=log)
        result["compat"] = verdicts
        result["source_requested"] = options.get("source") or "db"
        return result
    result = _run_db_export(client, probe, options, check_mode=check_mode, log=log)
    result["source"] = "db"
    result["source_requested"] = options.get("source") or "db"
    return result


def records_reader(client, options):
    """The read-only reader of transmission records, from the export's (or the preflight's) options."""
    return lotes_records.RecordsReader(
        client,
        records_table=options.get("records_table") or lotes_records.DEFAULT_RECORDS_TABLE,
        uuid_column=options.get("records_uuid_column") or lotes_records.DEFAULT_UUID_COLUMN,
        node_query=options.get("node_query"),
        node_query_requires=options.get("node_query_requires"),
    )


def observe_records(reader):
    """(db_ids | None, db_note, node_ids | None, node_note): what this server lets the collection observe."""
    try:
        db_ids, db_note = reader.record_ids(), None
    except lotes_records.NotObservable as exc:
        db_ids, db_note = None, exc.msg
    try:
        node_ids, node_note = reader.node_delivered_ids(), None
    except lotes_records.NotObservable as exc:
        node_ids, node_note = None, exc.msg
    return db_ids, db_note, node_ids, node_note


def _today(options):
    today = options.get("today") or datetime.date.today()
    return datetime.date.fromisoformat(today) if isinstance(today, str) else today


def run_file_export(client, options, check_mode=False, log=None):
    """File mode: deliver the lote files the operator saved from the PEC into the inbox, each checked by its LEDI
    content against this PEC's records; the database is only read. The records gate (every record delivered in a
    file or, when observable, at a node) and the CDS deadline come from the same facts."""
    reader = records_reader(client, options)
    db_ids, db_note, node_ids, node_note = observe_records(reader)
    ledger = Ledger(options["state_dir"])
    if not check_mode:
        ledger.prepare_dirs()
    lock = ledger.lock() if not check_mode else contextlib.nullcontext()
    with lock:
        ledger.load()
        destination = (
            make_destination(options.get("destination"), ours=FILE_DEST_NAMES) if options["transfer"] else None
        )
        exporter = FileExporter(
            ledger,
            destination,
            files_dir=options.get("files_dir") or DEFAULT_FILES_DIR,
            pattern=options.get("files_glob") or DEFAULT_FILES_GLOB,
            settle_seconds=int(
                options["files_settle_seconds"]
                if options.get("files_settle_seconds") is not None
                else DEFAULT_SETTLE_SECONDS
            ),
            cnes=options.get("cnes"),
            transfer=options["transfer"],
            reverify=options["reverify_confirmed"],
            check_mode=check_mode,
            log=log,
            known_records=db_ids,
        )
        result = exporter.run()
        file_delivered, waiting = lotes_records.delivered_by_files(ledger.files, exporter.uuids_of)
        today = _today(options)
        seen, node_seen = {}, {}
        if db_ids is not None:
            seen, node_seen = lotes_records.SeenRecords(options["state_dir"]).observe(
                db_ids, node_ids, today, check_mode=check_mode
            )
    gate = lotes_records.records_gate(db_ids, file_delivered, waiting, node_ids, node_note)
    gate["why"] = db_note
    result["gate"] = gate
    result["source"] = "files"
    result["deadline"] = (
        lotes_records.records_deadline(
            seen,
            file_delivered,
            node_seen,
            options.get("cnes") or None,
            today,
            previous_month(today),
            int(options.get("deadline_day") or 10),
        )
        if db_ids is not None
        else None
    )
    result["ledger"] = ledger.path
    result["destination"] = destination.label if destination else None
    return result


def _run_db_export(client, probe, options, check_mode=False, log=None):
    compat = {}
    if options["export"]:
        compat["create_lotes"] = probe.require("create_lotes")
    if options["export"] or options["transfer"]:
        compat["mark_lotes_sent"] = probe.require("mark_lotes_sent")
    ledger = Ledger(options["state_dir"])
    if not check_mode:
        ledger.prepare_dirs()
    elif not os.path.isdir(options["state_dir"]):
        ledger.files_dir = os.path.join(options["state_dir"], "files")
    db = LotesDb(
        client,
        options.get("situation_generated", "GERADO"),
        options.get("situation_sent", "ENVIADO"),
        options.get("export_situations") or ["GERADO"],
    )
    lock = ledger.lock() if not check_mode else contextlib.nullcontext()
    with lock:
        ledger.load()
        pattern = options.get("file_pattern") or DEFAULT_FILE_PATTERN
        destination = make_destination(options.get("destination"), pattern) if options.get("transfer", True) else None
        exporter = Exporter(
            db,
            ledger,
            destination,
            cnes=options.get("cnes"),
            file_pattern=pattern,
            max_records=options["max_records_per_lote"],
            export=options["export"],
            transfer=options["transfer"],
            reverify=options["reverify_confirmed"],
            check_mode=check_mode,
            log=log,
        )
        result = exporter.run()
        today = options.get("today") or datetime.date.today()
        if isinstance(today, str):
            today = datetime.date.fromisoformat(today)
        month_first = previous_month(today)
        nxt = next_month(month_first)
        result["deadline"] = deadline_status(
            db.month_production(month_first, nxt),
            ledger.lotes,
            today,
            month_first,
            options["deadline_day"] or 10,
            db.codes()[db.names["sent"]],
        )
        result["ledger"] = ledger.path
        result["compat"] = compat
        result["destination"] = destination.label if destination else None
    return result


def files_blockers(result):
    """File mode: why not every record is at its destination yet (empty: all of them are), for the migration."""
    files = result.get("files") or {}
    out = []
    if result["pending"]:
        out.append(f"{result['pending']} lote file(s) not confirmed at the destination (retried next run)")
    out.extend(e["msg"] for e in result["errors"][:3])
    out.extend(lotes_records.gate_problems(result["gate"], files.get("dir")))
    out.extend(f"arquivo inválido {i['file']}: {i['reason']}" for i in files.get("invalid", []))
    out.extend(f"arquivo ainda não assentado {i['file']}: {i['reason']}" for i in files.get("skipped", []))
    return out


def public_result(result):
    """The fields of the migration contract (lotes_export_result), and the mode that ran (``source``)."""
    out = {k: result[k] for k in ("exported", "sent", "confirmed", "pending")} | {
        "lotes": [{k: lote[k] for k in ("id", "file", "records", "sha256", "confirmed")} for lote in result["lotes"]]
    }
    out["source"] = result.get("source", "db")
    if out["source"] == "files":
        gate = result["gate"]
        out["pending_records"] = gate["missing"]
        out["gate"] = {
            k: gate[k] for k in ("observable", "db_records", "delivered_in_files", "at_node", "missing", "ok")
        }
        out["invalid"] = result["files"]["invalid"]
    return out


DEFAULT_FACTS_DIR = _paths.FACTS_DIR


def state_data(result):
    """What the managers' report needs of a lotes run: the ``lotes`` concern of the server's state.

    State, not this run's counts (a second run that has nothing to do records the same thing): the records still
    pending are in the CDS deadline (per unit) and in pec_info's production view.
    """
    files = result.get("files") or {}
    gate = result.get("gate") or {}
    return {
        "source": result.get("source", "db"),
        "pending_lotes": result.get("pending", 0),
        "records": {k: gate.get(k) for k in ("observable", "db_records", "missing", "node_observable", "ok")}
        if gate
        else None,
        "invalid_files": [i.get("file") for i in files.get("invalid", [])],
        "errors": [e.get("msg") for e in result.get("errors", [])][:5],
        "deadline": result.get("deadline"),
    }


def record_state(result, facts_dir=DEFAULT_FACTS_DIR, check_mode=False):
    """Record the run in the server's state; True when the state file changed (or would, in check mode)."""
    changed, _before, _after = write_state(
        facts_dir or DEFAULT_FACTS_DIR, "lotes", state_data(result), check_mode=check_mode
    )
    return changed


def cli_main(argv=None):
    """``sesdf-esus-lotes --config /etc/sesdf-esus/lotes-export.json``: the weekly cron job, without Ansible.

    Exit codes: 0 every lote confirmed at the destination; 2 some lote still pending (retried next run);
    1 error before anything could be done (message on stderr).
    """
    import argparse

    from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import pec_argument_spec
    from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
    from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall

    parser = argparse.ArgumentParser(prog="sesdf-esus-lotes", description=cli_main.__doc__)
    parser.add_argument("--config", default=_paths.CONFIG_DIR + "/lotes-export.json")
    parser.add_argument("--check", action="store_true", help="show what would be done, change nothing")
    args = parser.parse_args(argv)
    log = JobLog(JOB_TAG, journal=False, timestamps=True)
    stamp = local_now_iso()
    try:
        options = read_config(args.config)
        params = {k: v.get("default") for k, v in pec_argument_spec().items()}
        params.update({k: v for k, v in (options.get("pec") or {}).items() if k in params})
        install = PecInstall(params)
        with PgClient(
            install.pg_bin_dir(), install.connection(), timeout=int(options.get("db_timeout", 300))
        ) as client:
            result = run_export(client, options, check_mode=args.check, log=log)
    except ConfigError as exc:
        log(f"ERRO: configuração {args.config} ilegível: {exc.reason}", "err")
        return EXIT_FAILED
    except (OSError, ValueError) as exc:
        log(f"ERRO: configuração {args.config} ilegível: {exc}", "err")
        return EXIT_FAILED
    except PecError as exc:
        log(f"ERRO: {exc.msg}", "err")
        return EXIT_FAILED
    summary = public_result(result) | {"errors": result["errors"], "deadline": result["deadline"], "at": stamp}
    for item in (result.get("files") or {}).get("invalid", []):
        log(f"AVISO: lote {item['file']} inválido, não enviado e deixado na pasta: {item['reason']}", "warning")
    sys.stdout.write(json.dumps(summary, ensure_ascii=False, sort_keys=True) + "\n")
    status_file = options.get("status_file")
    if status_file and not args.check:
        write_status_quiet(status_file, summary, 0o644)
    if not args.check:
        try:
            record_state(result, options.get("facts_dir"))
        except PecError as exc:
            log(f"AVISO: estado para o relatório não gravado: {exc.msg}", "warning")
    attention = result["pending"] or result["errors"] or (result.get("files") or {}).get("invalid")
    return EXIT_PENDING if attention else EXIT_OK
