# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Transmission records on the real PEC's model: which production is not yet at its destination.

Real servers track transmission per destination node (docs/pec-facts.md, third review); of their tables only the
names and two columns are attested, ``tb_dado_transp.co_unico_dado_serializado`` (the record's unique id) among them.
So the collection reads, read-only:

- the records the database holds: their unique ids, from the attested column (a variable, with that default);
- the records at a destination node, ONLY through a query IT writes from a survey of a real server
  (docs/survey.md), run in a READ ONLY transaction after the tables and columns it names are probed; without it
  online delivery is "não verificável", never assumed;
- the records in lote files the operator saved from the PEC and the collection delivered (the inbox, lotes.py),
  each file's records decoded from its LEDI content (ledi.py).

A record counts as delivered when it is in a delivered file or (when observable) at a node. The migration gate and
the CDS deadline are computed from these same facts. Python stdlib only: runs on UBS servers.
"""

from __future__ import annotations

import datetime
import os
import re

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import cds_deadline
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import missing_schema, query_read_only, single_select

DEFAULT_RECORDS_TABLE = "tb_dado_transp"
DEFAULT_UUID_COLUMN = "co_unico_dado_serializado"
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
SAMPLE = 10
NOT_OBSERVABLE = "não verificável"


def records_argument_spec():
    """The options of plugins/doc_fragments/lotes_records.py."""
    return dict(
        records_table=dict(type="str", default=DEFAULT_RECORDS_TABLE),
        records_uuid_column=dict(type="str", default=DEFAULT_UUID_COLUMN),
        node_query=dict(type="str", default=""),
        node_query_requires=dict(type="dict", default={}),
    )


class NotObservable(PecError):
    """A fact this server does not let the collection observe (a table or column absent, no query configured)."""


def _identifier(name, what):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PecError(f"{what} {name!r} is not a plain SQL identifier (lower case letters, digits, _)")
    return name


def normalise_uuid(value):
    return (value or "").strip().lower()


class RecordsReader:
    """Read-only facts about transmission records on the live schema.

    ``node_query``: a SELECT returning one column, the unique ids of the records at a destination node (written by
    IT from a survey; the double's inventory has one). ``node_query_requires``: {table: [columns]} it names, probed
    before it runs."""

    def __init__(
        self,
        client,
        records_table=DEFAULT_RECORDS_TABLE,
        uuid_column=DEFAULT_UUID_COLUMN,
        node_query=None,
        node_query_requires=None,
    ):
        self.client = client
        self.records_table = _identifier(records_table, "records table")
        self.uuid_column = _identifier(uuid_column, "record id column")
        self.node_query = (node_query or "").strip().rstrip(";").strip() or None
        self.node_query_requires = node_query_requires or {}

    def record_ids(self):
        """Every record's unique id in the database (a set of lower-case strings). Raises NotObservable."""
        if missing_schema(self.client, {self.records_table: [self.uuid_column]}):
            raise NotObservable(
                f"column {self.records_table}.{self.uuid_column} not found (the records' unique id on real servers): "
                "set records_uuid_column (sesdf_esus_pec_records_uuid_column) from a survey of this PEC version "
                "(docs/survey.md)"
            )
        rows = self.client.query(
            f"SELECT {self.uuid_column} FROM {self.records_table} WHERE {self.uuid_column} IS NOT NULL", record=False
        )
        return {normalise_uuid(r[0]) for r in rows}

    def node_check(self):
        """(usable, why): whether the node query can run on this schema."""
        if not self.node_query:
            return False, (
                "nenhuma consulta de entrega por nó configurada (sesdf_esus_pec_node_query, escrita pela TI a partir "
                "do levantamento de um servidor real): a entrega online do PEC não é verificável"
            )
        if single_select(self.node_query) is None:
            return False, "a consulta de entrega por nó precisa ser um único SELECT (ou WITH ... SELECT)"
        if not self.node_query_requires:
            return (
                False,
                "a consulta de entrega por nó não diz as tabelas e colunas que usa "
                "(sesdf_esus_pec_node_query_requires)",
            )
        missing = missing_schema(
            self.client, {table: list(columns or []) for table, columns in self.node_query_requires.items()}
        )
        if missing:
            return False, (
                f"a consulta de entrega por nó usa o que este PEC não tem ({', '.join(missing)}): ela foi escrita para "
                "outro esquema; a entrega online não é verificável aqui"
            )
        return True, None

    def node_delivered_ids(self):
        """Ids of the records at a destination node, or raises NotObservable (never a guess)."""
        usable, why = self.node_check()
        if not usable:
            raise NotObservable(why)
        rows = query_read_only(self.client, self.node_query)
        return {normalise_uuid(r[0]) for r in rows if r and r[0]}


# Records first seen ---------------------------------------------------------------------------------------------


class SeenRecords:
    """When the collection first saw each record in the database, and first saw it at a node.

    Real servers attest no date column for a record, so a record's month is the month the collection first saw it
    (exact to the interval between runs). Records already there on the first run are the baseline: their month is
    unknown; they count for the migration gate, never for a month's CDS deadline. Files ``seen/<YYYY-MM>.txt`` and
    ``node/<YYYY-MM>.txt`` hold ``<uuid> <YYYY-MM-DD>`` lines; ``seen/baseline.txt`` holds the baseline ids."""

    def __init__(self, state_dir):
        self.dir = os.path.join(state_dir, "registros")

    def _load(self, sub):
        path = os.path.join(self.dir, sub)
        out = {}
        try:
            names = sorted(os.listdir(path))
        except FileNotFoundError:
            return out
        for name in names:
            if not name.endswith(".txt"):
                continue
            with open(os.path.join(path, name), encoding="ascii") as handle:
                for line in handle:
                    parts = line.split()
                    if parts:
                        out[parts[0]] = parts[1] if len(parts) > 1 else None
        return out

    def load(self):
        return self._load("seen"), self._load("node")

    def observe(self, db_ids, node_ids, today, check_mode=False):
        """Record what is new since the last run; returns (seen, node) maps after this run (uuid -> day or None)."""
        seen, node = self.load()
        day = today.isoformat()
        month = today.strftime("%Y-%m")
        new_seen = sorted(db_ids - set(seen))
        first_run = not seen
        if new_seen and not check_mode:
            if first_run:
                self._append("seen", "baseline.txt", [f"{u}\n" for u in new_seen])
            else:
                self._append("seen", f"{month}.txt", [f"{u} {day}\n" for u in new_seen])
        for uuid in new_seen:
            seen[uuid] = None if first_run else day
        if node_ids is not None:
            new_node = sorted(node_ids - set(node))
            if new_node and not check_mode:
                self._append("node", f"{month}.txt", [f"{u} {day}\n" for u in new_node])
            for uuid in new_node:
                node[uuid] = day
        return seen, node

    def _append(self, sub, name, lines):
        path = os.path.join(self.dir, sub)
        os.makedirs(path, mode=0o700, exist_ok=True)
        target = os.path.join(path, name)
        try:
            with open(target, encoding="ascii") as handle:
                old = handle.read()
        except FileNotFoundError:
            old = ""
        atomic_write(target, (old + "".join(lines)).encode("ascii"), mode=0o600)


# Delivered files ------------------------------------------------------------------------------------------------


def delivered_by_files(ledger_files, uuids_of):
    """{uuid: confirmed day} for the records in lote files confirmed at the destination, and the set of records in
    valid files not yet confirmed. ``uuids_of(entry)`` gives a file entry's record ids."""
    delivered, waiting = {}, set()
    for entry in ledger_files.values():
        ids = uuids_of(entry)
        if entry.get("confirmed_at"):
            day = entry["confirmed_at"][:10]
            for uuid in ids:
                if uuid not in delivered or day < delivered[uuid]:
                    delivered[uuid] = day
        else:
            waiting.update(ids)
    return delivered, waiting - set(delivered)


# Gate and deadline ----------------------------------------------------------------------------------------------


def records_gate(db_ids, file_delivered, waiting_in_files, node_ids, node_note=None):
    """The migration's "every lote sent", from the records: every record the database holds is in a delivered file
    or at a destination node. ``db_ids`` None = the records cannot be read (not observable: the gate is closed)."""
    out = {
        "observable": db_ids is not None,
        "db_records": None,
        "delivered_in_files": len(file_delivered),
        "at_node": None if node_ids is None else len(node_ids),
        "node_observable": node_ids is not None,
        "node_note": node_note,
        "missing": None,
        "missing_sample": [],
        "missing_in_unconfirmed_files": 0,
        "ok": False,
    }
    if db_ids is None:
        return out
    missing = db_ids - set(file_delivered) - (node_ids or set())
    out.update(
        {
            "db_records": len(db_ids),
            "missing": len(missing),
            "missing_sample": sorted(missing)[:SAMPLE],
            "missing_in_unconfirmed_files": len(missing & waiting_in_files),
            "ok": not missing,
        }
    )
    return out


def gate_problems(gate, inbox):
    """Why the gate is closed, in Portuguese, each with what to do (empty: it is open)."""
    if not gate["observable"]:
        why = f": {gate['why']}" if gate.get("why") else ""
        return [f"os registros de produção deste PEC não podem ser lidos ({NOT_OBSERVABLE}){why}"]
    if gate["ok"]:
        return []
    out = [
        f"{gate['missing']} registro(s) de produção do banco não estão em nenhum lote entregue"
        + ("" if gate["node_observable"] else " (a entrega online do PEC não é verificável neste servidor)")
        + f"; exemplos: {', '.join(gate['missing_sample'])}"
    ]
    if gate["missing_in_unconfirmed_files"]:
        out.append(
            f"{gate['missing_in_unconfirmed_files']} deles estão em arquivos de lote ainda não confirmados no destino: "
            "rode a exportação de novo"
        )
    out.append(
        "no PEC: Transmissão de dados → Gerar novo lote → Salvar em arquivo, e coloque o arquivo RAS_Lote*.zip em "
        f"{inbox}; depois rode de novo"
    )
    return out


def deadline_state(complete, on_time, days_left):
    """The CDS status of a unit's month: em_dia, enviado_com_atraso, pendente (before the deadline) or atrasado."""
    if complete:
        return "em_dia" if on_time else "enviado_com_atraso"
    return "pendente" if days_left >= 0 else "atrasado"


def records_deadline(seen, file_delivered, node_seen, cnes, today, month_first, deadline_day=10):
    """CDS by the deadline for month ``month_first``, from the records first seen that month: each delivered (in a
    confirmed file, or first seen at a node) by the deadline? One unit: the UBS's CNES (a real server attests no
    unit column for a record)."""
    deadline = cds_deadline(month_first, deadline_day)
    prefix = month_first.strftime("%Y-%m")
    month_ids = [u for u, day in seen.items() if day and day.startswith(prefix)]
    delivered_days = []
    for uuid in month_ids:
        days = [d for d in (file_delivered.get(uuid), node_seen.get(uuid)) if d]
        if days:
            delivered_days.append(min(days))
    records, confirmed = len(month_ids), len(delivered_days)
    last = max(delivered_days) if delivered_days else None
    complete = confirmed == records
    on_time = complete and (last is None or last <= deadline.isoformat())
    days_left = (deadline - today).days
    status = deadline_state(complete, on_time, days_left)
    unit = {
        "cnes": cnes,
        "records": records,
        "confirmed_records": confirmed,
        "last_confirmed_at": last,
        "pending_records": records - confirmed,
        "complete": complete,
        "on_time": on_time,
        "status": status,
    }
    return {
        "month": prefix,
        "deadline": deadline.isoformat(),
        "today": today.isoformat(),
        "days_left": days_left,
        "basis": "registros vistos pela primeira vez no mês (o PEC real não tem data de registro atestada)",
        "units": [unit] if records else [],
        "ok": status == "em_dia",
    }


def write_uuids(path, uuids):
    """A delivered file's record ids, one per line, written atomically (root-only)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, "".join(f"{u}\n" for u in sorted(uuids)).encode("ascii"), mode=0o600)


def read_uuids(path):
    try:
        with open(path, encoding="ascii") as handle:
            return {line.strip() for line in handle if line.strip()}
    except FileNotFoundError:
        return set()


# CDS deadline of db mode ---------------------------------------------------------------------------


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
        status = deadline_state(complete, on_time, days_left)
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


def records_reader(client, options):
    """The read-only reader of transmission records, from the export's (or the preflight's) options."""
    return RecordsReader(
        client,
        records_table=options.get("records_table") or DEFAULT_RECORDS_TABLE,
        uuid_column=options.get("records_uuid_column") or DEFAULT_UUID_COLUMN,
        node_query=options.get("node_query"),
        node_query_requires=options.get("node_query_requires"),
    )


def observe_records(reader):
    """(db_ids | None, db_note, node_ids | None, node_note): what this server lets the collection observe."""
    try:
        db_ids, db_note = reader.record_ids(), None
    except NotObservable as exc:
        db_ids, db_note = None, exc.msg
    try:
        node_ids, node_note = reader.node_delivered_ids(), None
    except NotObservable as exc:
        node_ids, node_note = None, exc.msg
    return db_ids, db_note, node_ids, node_note
