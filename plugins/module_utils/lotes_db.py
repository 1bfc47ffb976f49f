# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Db mode of the lotes export: the collection creates the lotes in the PEC's transmission tables, writes their
files and manifests, delivers them (lotes_delivery) and marks them sent.

Python stdlib only. A lote is created in the database (tb_lote_transp, rows of tb_dado_transp tied to it) in one
statement; its file can always be rebuilt from those rows (deterministic zip), so a crash after the commit loses
nothing.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import zipfile

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import (
    atomic_write,
    sha256_bytes,
    sha256_file,
    write_json,
)
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import local_now_iso
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_delivery import (
    DEFAULT_FILE_PATTERN,
    deliver,
    destination_ready,
    new_result,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


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
        self.result = new_result(pending_records_before=0)

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
            self.log(f"lote {lote_id}: sem registros em tb_dado_transp; ignorado")
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
        def save(entry):
            self.ledger.put(entry)
            self.ledger.save()

        return deliver(
            self.dest,
            entry,
            os.path.join(self.ledger.files_dir, entry["file"]),
            entry["file"],
            self.result,
            save,
            {"lote": entry["id"]},
            resend=resend,
            check_mode=self.check_mode,
            manifest=(os.path.join(self.ledger.files_dir, entry["manifest"]), entry["manifest"]),
            log=self.log,
        )

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
                    self.log(f"lote {lote_id} criado")
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
        dest_ok = destination_ready(self.dest, self.transfer, entries, self.reverify, res, "lote")
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
                            f"o lote {entry['file']} foi alterado no destino e não pode ser refeito idêntico a partir "
                            "do banco: reenvie-o à mão a partir de um backup"
                        ),
                    }
                )
                return
            if not self.check_mode:
                atomic_write(local, data, 0o600)
        self.log(f"lote {entry['file']}: alterado no destino (sha256 {arrived}); enviando de novo")
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
