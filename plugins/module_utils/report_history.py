# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report's history on the control node: one small file per region and day, read back for the 12-month trends.

Where and what: ``<history dir>/<region>/<AAAA-MM-DD>.json.gz``, gzip of one compact JSON document::

    {"schema": 1, "kind": "sesdf.esus/historico-relatorio", "region": "regiao_norte", "date": "2026-12-01",
     "cols": ["situacao", "versao", ...],
     "ubs": [{"h": "ubs-x", "s": "inapta", "r": "local_server", "p": [0, 1, 2], "k": "oovoooaoo-oo",
              "b": 1, "o": "ok", "d": "ok", "q": "ok", "c": {"m": "2026-11", "u": {"0010001": "em_dia"}}}, ...]}

one entry per UBS, numbers and codes only (:data:`FIELDS`): its status, how it was read, its pendencies per
severity, the mark of each column of the table (``k``: one letter per column of ``cols``, :data:`MARKS`), the age of
its last verified backup in days, its off-host copy, restore drill and repository check, and the CDS of the month
the lotes job follows, per unit. The monthly production is not kept: ``pec_info`` reads the last 12 months from the
PEC's own database on every run.

One file per region and day, because: a second run the same day rewrites the day's file only when something
changed (the same state gives the same bytes: gzip without a time stamp), so the report stays idempotent; the
regions' jobs, which may run side by side, never write the same file; retention is a file's name; and a damaged file
costs one day of one region. A run that did not read a UBS (``--limit``, or the UBS did not answer) leaves that
UBS's entry of the day as an earlier run of the same day recorded it.

Reading: a file whose name, gzip, JSON, ``kind`` or ``schema`` is not one of these, or whose date is after the
report's, is skipped and said (never fatal); so is an entry that is not a UBS's. A later collection reads an older
file: every field is read by its name (a field the file lacks reads as no data), the columns by the file's own
``cols``, and :data:`UPGRADES` turns an older ``schema`` into the current one. A file of a newer schema is skipped
and said. Files older than :data:`RETENTION_DAYS` are removed when their region's file of the day is written.
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import re
import zlib

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.report_model import SEVERITIES, cell_mark
from ansible_collections.sesdf.esus.plugins.module_utils.report_states import CDS_STATUSES

SCHEMA = 1
KIND = "sesdf.esus/historico-relatorio"
RETENTION_DAYS = 400
MONTHS = 12
# The columns of the table whose mark is kept, in the order of ``k``.
COLUMNS = (
    "situacao",
    "versao",
    "backup",
    "copia_externa",
    "restauracao",
    "cnes",
    "lotes",
    "hardening",
    "maintenance",
    "profiles",
    "upgrade",
    "readiness",
)
# A column's mark: v red (action needed), a amber (a record out of date or not taken), o shown (nothing due),
# - no record; ? this file does not say (an older file without the column).
MARKS = {"v": "due", "a": "stale", "o": "ok", "-": "none", "?": "unknown"}
# The fields of an entry: key -> what it holds.
FIELDS = {
    "h": "inventory host",
    "s": "status (report_model.STATUS_LABELS)",
    "r": "role read (local_server, consultation, none), nao_lido (reading failed) or inacessivel",
    "p": "pendencies per severity [critica, alta, media]",
    "k": "one mark per column of cols (MARKS)",
    "b": "age of the last verified backup, days",
    "o": "off-host copy state (report_states.OFFHOST_STATES, desconhecido)",
    "d": "restore drill: ok, ok_contagem (row counts only), falha, nunca, or the result recorded",
    "q": "repository check: ok, falha, or the result recorded",
    "c": "CDS of the month the lotes job follows: {m: AAAA-MM, u: {cnes: report_states.CDS_STATUSES}}",
}
# schema -> function turning a document of that schema into one of the next (none yet: schema 1 is the first).
UPGRADES = {}
NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\.json\.gz$")
REGION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
FAILED = ("failed", "falha", "error")


# ----------------------------------------------------------------------------------------------- one UBS's entry
def _shown(row, field):
    """Whether a column shows something (a record, a value) rather than nothing."""
    if not row.get("reachable"):
        return False
    backup = row.get("backup") or {}
    shown = {
        "situacao": True,
        "versao": bool((row.get("version") or {}).get("current")),
        "backup": bool(backup.get("last_success") or backup.get("record_cell")),
        "copia_externa": backup.get("offhost", "desconhecido") != "desconhecido",
        "restauracao": bool(backup.get("restore_drill")),
    }
    if field in shown:
        return shown[field]
    state = (row.get("states") or {}).get(field)
    return bool(state and state["present"])


def marks(row):
    """The ``k`` of a row: one letter per column (:data:`COLUMNS`), marked as the page marks its cell."""
    out = []
    for field in COLUMNS:
        mark = cell_mark(row, field)
        out.append("v" if mark == "due" else "a" if mark == "stale" else "o" if _shown(row, field) else "-")
    return "".join(out)


def _drill(backup):
    result = backup.get("restore_drill") or ""
    if result in ("", "never"):
        return "nunca"
    if result in FAILED:
        return "falha"
    if result == "ok":
        return "ok" if backup.get("restore_drill_hashes") else "ok_contagem"
    return result[:20]


def entry(row):
    """The history entry of one row of the model."""
    backup = row.get("backup") or {}
    if not row.get("reachable"):
        read = "inacessivel"
    else:
        read = row.get("role") or "nao_lido"
    severities = [p["severity"] for p in row.get("pendencias", [])]
    out = {
        "h": row["host"],
        "s": row["status"],
        "r": read,
        "p": [severities.count(s) for s in SEVERITIES],
        "k": marks(row),
    }
    if backup.get("age_days") is not None:
        out["b"] = backup["age_days"]
    if read == "local_server":
        out["o"] = backup.get("offhost") or "desconhecido"
        out["d"] = _drill(backup)
        repo = backup.get("repo_check") or ""
        if repo:
            out["q"] = "falha" if repo in FAILED else repo[:20]
    cds = row.get("cds") or {}
    if cds.get("month") and cds.get("units"):
        out["c"] = {"m": cds["month"], "u": {u["cnes"]: u["status"] for u in cds["units"]}}
    return out


# ------------------------------------------------------------------------------------------------ reading a file
def _count(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _code(value):
    return value if isinstance(value, str) and 0 < len(value) <= 40 else None


def _clean(raw, cols):
    """A file's entry in the current form, or None when it is not a UBS's entry. A field of the wrong type reads
    as no data."""
    if not isinstance(raw, dict) or not isinstance(raw.get("h"), str) or not raw["h"]:
        return None
    out = {"h": raw["h"]}
    for key in ("s", "r", "o", "d", "q"):
        if _code(raw.get(key)):
            out[key] = raw[key]
    pend = raw.get("p")
    if isinstance(pend, list) and len(pend) == len(SEVERITIES) and all(_count(n) is not None for n in pend):
        out["p"] = list(pend)
    if _count(raw.get("b")) is not None:
        out["b"] = raw["b"]
    k = raw.get("k") if isinstance(raw.get("k"), str) else ""
    by_col = {col: k[i] for i, col in enumerate(cols) if i < len(k) and k[i] in MARKS}
    out["k"] = "".join(by_col.get(col, "?") for col in COLUMNS)
    cds = raw.get("c")
    if isinstance(cds, dict) and isinstance(cds.get("m"), str) and isinstance(cds.get("u"), dict):
        units = {str(c): s for c, s in cds["u"].items() if s in CDS_STATUSES}
        if units:
            out["c"] = {"m": cds["m"][:7], "u": units}
    return out


def decode(data, region, day):
    """({host: entry}, '') of a file's bytes, or (None, why it is skipped, in Portuguese)."""
    try:
        doc = json.loads(gzip.decompress(data).decode("utf-8"))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError):
        return None, "arquivo danificado (não é um JSON comprimido com gzip inteiro)"
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        return None, "não é um arquivo do histórico do relatório"
    schema = doc.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        return None, "não é um arquivo do histórico do relatório (sem versão do formato)"
    if schema > SCHEMA:
        return None, (
            f"gravado por uma versão mais nova da coleção (formato {schema}; esta lê até o {SCHEMA}): atualizar a "
            "coleção no nó de controle"
        )
    while schema < SCHEMA:
        doc, schema = UPGRADES[schema](doc), schema + 1
    if doc.get("date") != day or doc.get("region") != region:
        return None, f"o conteúdo é de outro dia ou região ({doc.get('region')!s:.40} {doc.get('date')!s:.10})"
    raw = doc.get("ubs")
    cols = [c for c in doc.get("cols") or () if isinstance(c, str)] if isinstance(doc.get("cols"), list) else []
    if not isinstance(raw, list):
        return None, "não é um arquivo do histórico do relatório (sem a lista de UBS)"
    entries, bad = {}, 0
    for item in raw:
        cleaned = _clean(item, cols)
        if cleaned is None:
            bad += 1
        else:
            entries[cleaned["h"]] = cleaned
    return entries, (f"{bad} registro(s) que não são de uma UBS ignorado(s); o resto foi lido" if bad else "")


def encode(region, day, entries):
    """The bytes of a region's file of the day: the same entries give the same bytes."""
    doc = {
        "schema": SCHEMA,
        "kind": KIND,
        "region": region,
        "date": day,
        "cols": list(COLUMNS),
        "ubs": [entries[h] for h in sorted(entries)],
    }
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


# ------------------------------------------------------------------------------------------ the store of a run
def month_keys(today, months=MONTHS, offset=0):
    """'AAAA-MM' of the ``months`` months ending ``offset`` months before today's, oldest first."""
    index = today.year * 12 + today.month - 1 - offset
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - months + 1, index + 1)]


def _day_of(name):
    match = NAME.match(name)
    if not match:
        return None
    try:
        return datetime.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def load(directory, model, today, months=MONTHS):
    """The history the pages read: {dir, days: {region: {AAAA-MM-DD: {host: entry}}}, skipped: [why], written:
    {region: bytes of today's file}}, with the last ``months`` months (and the month before them, for the CDS) of
    every region of the model, and today's entries of this run merged into the day's file. With no ``directory``,
    today's entries only."""
    since = datetime.date.fromisoformat(month_keys(today, months + 1)[0] + "-01")
    history = {"dir": directory, "days": {}, "skipped": [], "written": {}, "date": today.isoformat()}
    for region in model["regions"]:
        name = region["region"]
        if not REGION.match(name):
            history["skipped"].append(f"{name[:60]}: nome de região que não serve de diretório, sem histórico")
            continue
        days = _read_region(directory, name, since, today, history["skipped"]) if directory else {}
        if region["rows"]:
            day = today.isoformat()
            merged = dict(days.get(day) or {})
            for row in region["rows"]:
                new = entry(row)
                # a UBS this run did not read keeps what an earlier run of the day recorded
                if new["r"] != "inacessivel" or row["host"] not in merged:
                    merged[row["host"]] = new
            days[day] = merged
            history["written"][name] = encode(name, day, merged)
        history["days"][name] = days
    return history


def _read_region(directory, region, since, today, skipped):
    folder = os.path.join(directory, region)
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        skipped.append(f"{region}/: não pôde ser lido ({exc.strerror or exc})")
        return {}
    days = {}
    for name in names:
        where = f"{region}/{name}"
        day = _day_of(name)
        if day is None:
            skipped.append(f"{where}: não é um arquivo do histórico (o nome não é AAAA-MM-DD.json.gz)")
            continue
        if day > today:
            skipped.append(f"{where}: data depois do dia do relatório (relógio do nó de controle?)")
            continue
        if day < since:
            continue
        try:
            with open(os.path.join(folder, name), "rb") as handle:
                data = handle.read()
        except OSError as exc:
            skipped.append(f"{where}: não pôde ser lido ({exc.strerror or exc})")
            continue
        entries, why = decode(data, region, day.isoformat())
        if why:
            skipped.append(f"{where}: {why}")
        if entries is not None:
            days[day.isoformat()] = entries
    return days


def save(history, check_mode=False, mode=0o640):
    """Write each region's file of the day when its bytes differ, and remove that region's files older than
    :data:`RETENTION_DAYS`. Returns the paths changed (or that would be, in check mode), relative to the history
    directory. Raises PecError saying what to do when the directory cannot be written."""
    directory = history["dir"]
    if not directory or not os.path.isabs(directory):
        raise PecError(f"report_history_dir must be an absolute path on the control node, got {directory!r}")
    today = datetime.date.fromisoformat(history["date"])
    oldest = today - datetime.timedelta(days=RETENTION_DAYS)
    changed = []
    for region, data in sorted(history["written"].items()):
        folder = os.path.join(directory, region)
        name = f"{today.isoformat()}.json.gz"
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as handle:
                same = handle.read() == data
        except OSError:
            same = False
        expired = [n for n in _list(folder) if _day_of(n) and _day_of(n) < oldest]
        changed += [f"{region}/{n}" for n in ([] if same else [name]) + expired]
        if check_mode:
            continue
        try:
            os.makedirs(folder, mode=0o750, exist_ok=True)
        except OSError as exc:
            raise PecError(
                f"cannot create the report history directory {folder}: {exc.strerror or exc}; set "
                "report_history_dir to a writable directory of the control node"
            ) from exc
        if not same:
            atomic_write(path, data, mode)
        for old in expired:
            try:
                os.unlink(os.path.join(folder, old))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise PecError(f"cannot remove the expired history file {folder}/{old}: {exc.strerror or exc}") from exc
    return changed


def _list(folder):
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


# ------------------------------------------------------------------------------------------------------ trends
def _last_of_month(days, month):
    """The entries of the last day recorded in ``month`` ('AAAA-MM'), or None."""
    keys = [d for d in days if d.startswith(month)]
    return days[max(keys)] if keys else None


def _local(entries):
    return [e for e in entries if e.get("r") == "local_server"]


def _col(entry_, field):
    k = entry_.get("k") or ""
    index = COLUMNS.index(field)
    return k[index] if index < len(k) else "?"


def _counts(items, keys):
    out = dict.fromkeys(keys, 0)
    for key in items:
        out[key] += 1
    return out


OFFHOST_GROUPS = {"ok": "em_dia", "pending": "com_problema", "failed": "com_problema", "failing": "com_problema"}
OFFHOST_GROUPS["stale"] = "com_problema"
DRILL_GROUPS = {"ok": "ok", "ok_contagem": "ok_contagem", "falha": "falha"}


def region_trends(history, regions, today, months=MONTHS):
    """The 12-month series of one page (``regions``: the region names it covers, summed): per month, from the last
    day recorded in that month in each region (None: no day recorded), and the CDS per month of production."""
    keys = month_keys(today, months)
    per_month = {}
    for month in keys:
        found = [_last_of_month(history["days"].get(r) or {}, month) for r in regions]
        found = [f for f in found if f is not None]
        per_month[month] = [e for f in found for e in f.values()] if found else None
    pend, backup, offhost, drill = {}, {}, {}, {}
    for month, entries in per_month.items():
        if entries is None:
            pend[month] = backup[month] = offhost[month] = drill[month] = None
            continue
        with_p = [e["p"] for e in entries if "p" in e]
        pend[month] = {s: sum(p[i] for p in with_p) for i, s in enumerate(SEVERITIES)}
        pend[month]["ubs_com_acao"] = sum(1 for p in with_p if p[0] + p[1])
        pend[month]["ubs"] = len(entries)
        local = _local(entries)
        backup[month] = _counts(
            ({"v": "atrasado", "o": "em_dia", "a": "atrasado"}.get(_col(e, "backup"), "sem_registro") for e in local),
            ("em_dia", "atrasado", "sem_registro"),
        )
        offhost[month] = _counts(
            (OFFHOST_GROUPS.get(e.get("o"), "desativada_ou_sem_registro") for e in local),
            ("em_dia", "com_problema", "desativada_ou_sem_registro"),
        )
        drill[month] = _counts(
            (DRILL_GROUPS.get(e.get("d"), "nunca") for e in local), ("ok", "ok_contagem", "falha", "nunca")
        )
    return {
        "months": keys,
        "pendencias": pend,
        "backup": backup,
        "copia_externa": offhost,
        "restauracao": drill,
        "cds": cds_by_month(history, regions, today, months),
    }


def by_host(history, region):
    """{host: [(day, entry), ...] oldest first} of a region, built once per history."""
    index = history.setdefault("by_host", {})
    if region not in index:
        out = {}
        days = history["days"].get(region) or {}
        for day in sorted(days):
            for name, item in days[day].items():
                out.setdefault(name, []).append((day, item))
        index[region] = out
    return index[region]


def cds_by_month(history, regions, today, months=MONTHS, host=None):
    """Per month of production (the ``months`` months before today's): the units by CDS status, as the last day
    recorded about that month says (None: no day said anything about it). With ``host``, that UBS's only."""
    keys = set(month_keys(today, months, offset=1))
    latest = {}
    for region in regions:
        hosts = by_host(history, region)
        for name in [host] if host is not None else list(hosts):
            for _day, item in hosts.get(name, ()):
                cds = item.get("c")
                if cds and cds["m"] in keys:
                    for cnes, status in cds["u"].items():
                        latest[(cds["m"], region, name, cnes)] = status
    keys = month_keys(today, months, offset=1)
    out = {}
    for month in keys:
        statuses = [s for (m, *_rest), s in latest.items() if m == month]
        out[month] = _counts(statuses, CDS_STATUSES) if statuses else None
    return {"months": keys, "counts": out}


def ubs_trends(history, region, host, today, months=MONTHS):
    """One UBS's 12 months: per column and month the days of each mark, per month the pendencies and the backup's
    age on the last day recorded, and the CDS per month of production."""
    keys = month_keys(today, months)
    per_month = {}
    for day, item in by_host(history, region).get(host, ()):
        per_month.setdefault(day[:7], []).append(item)
    grid = {field: {} for field in COLUMNS}
    last = {}
    for month in keys:
        recorded = per_month.get(month, [])
        last[month] = recorded[-1] if recorded else None
        for field in COLUMNS:
            grid[field][month] = _counts((_col(e, field) for e in recorded), MARKS) if recorded else None
    return {
        "months": keys,
        "grid": grid,
        "pendencias": {
            m: (dict(zip(SEVERITIES, e["p"], strict=True)) if e and "p" in e else None) for m, e in last.items()
        },
        "backup_age": {m: (e.get("b") if e else None) for m, e in last.items()},
        "recorded": {m: (e is not None) for m, e in last.items()},
        "cds": cds_by_month(history, [region], today, months, host=host),
    }
