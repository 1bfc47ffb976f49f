# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migration of an apt UBS to the central server: the gates before consultation mode, and PEC settings.

- ``preflight``: is it safe to put this server in consultation mode? No production left outside a lote, no lote
  generated but not sent, every lote of the collection's ledger confirmed at the destination, and a verified backup
  (this collection's backup status fact) taken after the last lote/upgrade change and still intact on disk.
- ``set_config``: set keys of tb_config_sistema (automatic transmission off), with before/after.
"""

from __future__ import annotations

import datetime
import os

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso_offset, parse_ts
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_files import (
    DEFAULT_FILES_DIR,
    DEFAULT_FILES_GLOB,
    files_gate,
)
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_records import records_reader
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import missing_schema, sql_literal


def ledger_summary(path):
    """The lotes ledger (sesdf.esus.lotes_export): counts, unconfirmed ids, newest export/confirmation time."""
    data = read_json(path, "lotes ledger")
    if data is None:
        return {"path": path, "present": False, "lotes": 0, "confirmed": 0, "unconfirmed": [], "last_change": None}
    lotes = (data or {}).get("lotes") or {}
    if not isinstance(lotes, dict):
        raise PecError(f"lotes ledger {path} has an unknown layout; restore it from the server backup")
    unconfirmed = sorted((str(k) for k, e in lotes.items() if not (e or {}).get("confirmed_at")), key=_int_key)
    stamps = []
    for entry in lotes.values():
        for key in ("exported_at", "created_at", "sent_at", "confirmed_at"):
            stamp = parse_ts((entry or {}).get(key))
            if stamp:
                stamps.append(stamp)
    return {
        "path": path,
        "present": True,
        "lotes": len(lotes),
        "confirmed": len(lotes) - len(unconfirmed),
        "unconfirmed": unconfirmed,
        "last_change": iso_offset(max(stamps)) if stamps else None,
    }


def _int_key(text):
    return (0, int(text)) if str(text).isdigit() else (1, str(text))


def backup_summary(fact_path, max_age_hours=None, now=None):
    """This collection's backup status fact, and whether the archive it names is still on disk as described."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    fact = read_json(fact_path, "backup status fact") or {}
    created = parse_ts(fact.get("last_success"))
    path = fact.get("path")
    info = {
        "fact": fact_path,
        "present": bool(fact),
        "verified": bool(fact.get("verified")) and fact.get("last_result", "ok") == "ok",
        "created_at": iso_offset(created),
        "path": path,
        "file": os.path.basename(path) if path else None,
        "sha256": fact.get("sha256"),
        "size_bytes": fact.get("size_bytes"),
        "verify_level": fact.get("verify_level"),
        "offhost": fact.get("offhost") or {},
        "on_disk": False,
        "age_hours": round((now - created).total_seconds() / 3600, 2) if created else None,
        "problems": [],
    }
    if not fact:
        info["problems"].append(f"no backup status at {fact_path}: run the backup role (sesdf.esus.backup) first")
        return info
    if not info["verified"]:
        info["problems"].append(
            f"the last backup recorded in {fact_path} is not verified ({fact.get('last_error') or 'no success'}); "
            "run the backup role again"
        )
    if path and os.path.isfile(path):
        size = os.path.getsize(path)
        sidecar = path + ".sha256"
        recorded = None
        if os.path.isfile(sidecar):
            with open(sidecar, encoding="utf-8") as handle:
                recorded = (handle.read().split() or [None])[0]
        info["on_disk"] = size == fact.get("size_bytes") and (recorded is None or recorded == fact.get("sha256"))
        if not info["on_disk"]:
            info["problems"].append(
                f"backup {path} on disk does not match its status (size or sha256): run a new backup"
            )
    else:
        info["problems"].append(f"backup {path} named by {fact_path} is not on disk: run a new backup")
    if max_age_hours and info["age_hours"] is not None and info["age_hours"] > max_age_hours:
        info["problems"].append(
            f"the last verified backup is {info['age_hours']} h old (limit {max_age_hours} h): run a new backup"
        )
    return info


def database_summary(client, situation_sent="ENVIADO"):
    """Production outside a lote, lotes not sent, and the newest change to the transmission tables."""
    pending = int(client.scalar("SELECT count(*) FROM tb_dado_transp WHERE co_lote_transp IS NULL"))
    rows = client.query(
        "SELECT l.co_seq_lote_transp FROM tb_lote_transp l JOIN tb_situacao_lote_transp s USING (co_situacao)"
        f" WHERE s.no_situacao <> {sql_literal(situation_sent)} ORDER BY 1"
    )
    last = client.scalar(
        "SELECT to_char(greatest(max(dt_geracao), max(dt_envio)) AT TIME ZONE current_setting('TimeZone')"
        " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"') FROM tb_lote_transp"
    )
    return {"pending_records": pending, "unsent_lotes": [r[0] for r in rows], "last_change": last}


def last_lote_created(client):
    """The newest lote's creation time (UTC) from the attested ``tb_lote_transp.dt_criacao``, or None when this
    schema has no such column (read-only)."""
    if missing_schema(client, {"tb_lote_transp": ["dt_criacao"]}):
        return None
    return client.scalar(
        "SELECT to_char(max(dt_criacao) AT TIME ZONE current_setting('TimeZone') AT TIME ZONE 'UTC', "
        '\'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\') FROM tb_lote_transp'
    )


def preflight(client, params, now=None):
    """Every gate before consultation mode; ``problems`` empty means go.

    ``params["lotes_source"]`` ``files`` (the real PEC's model; the lotes export in file mode never writes the PEC's
    tables): every record the database holds must be in a lote file confirmed at the destination or, where a
    survey-based query lets the collection observe it, at a destination node; the inbox (``lotes_files_dir``,
    ``lotes_files_glob``) must hold nothing undelivered or invalid (lotes.files_gate). ``db``: the collection's own
    lotes in the old model's tables (the full test double)."""
    files_mode = (params.get("lotes_source") or "db") == "files"
    ledger = ledger_summary(params.get("lotes_ledger"))
    backup = backup_summary(params["backup_fact"], params.get("backup_max_age_hours"), now=now)
    problems, warnings = [], []
    files = None
    if files_mode:
        # the real PEC's model: records per destination node, lote files the operator saved into the inbox
        db = {"last_change": last_lote_created(client)}
        path = params.get("lotes_ledger")
        data = read_json(path, "lotes ledger") if path else None
        files = files_gate(
            data,
            params.get("lotes_files_dir") or DEFAULT_FILES_DIR,
            params.get("lotes_files_glob") or DEFAULT_FILES_GLOB,
            state_dir=os.path.dirname(path) if path else None,
            reader=records_reader(client, params),
            cnes=params.get("cnes"),
        )
        problems.extend(files["problems"])
        warnings.extend(files["warnings"])
    else:
        db = database_summary(client, params.get("situation_sent") or "ENVIADO")
        if db["pending_records"]:
            problems.append(
                f"{db['pending_records']} production records (tb_dado_transp) are not in any lote yet: export every "
                "pending lote first (sesdf.esus.lotes_export with lotes_export_all_pending)"
            )
        if db["unsent_lotes"]:
            problems.append(
                f"lotes {', '.join(db['unsent_lotes'])} were generated but not sent (tb_lote_transp): export and "
                "send them"
            )
    if ledger["unconfirmed"]:
        problems.append(
            f"lotes {', '.join(ledger['unconfirmed'])} of the ledger {ledger['path']} are not confirmed at the "
            "destination: rerun the lotes export until every lote is confirmed"
        )
    problems.extend(backup["problems"])
    created = parse_ts(backup["created_at"])
    changes = {
        "database": db["last_change"],
        "ledger": ledger["last_change"],
        "upgrade": iso_offset(_mtime(params.get("pec_config_path"))),
    }
    if created:
        newer = {k: v for k, v in changes.items() if v and parse_ts(v) > created}
        if newer:
            problems.append(
                "the last verified backup ("
                + backup["created_at"]
                + ") is older than the last change ("
                + ", ".join(f"{k} {v}" for k, v in sorted(newer.items()))
                + "): it is not a backup of the current state; run the backup role again"
            )
    return {
        "ok": not problems,
        "problems": problems,
        "warnings": warnings,
        "database": db,
        "ledger": ledger,
        "files": files,
        "backup": backup,
        "last_changes": changes,
    }


def _mtime(path):
    if not path or not os.path.exists(path):
        return None
    return datetime.datetime.fromtimestamp(os.path.getmtime(path), tz=datetime.timezone.utc)


def set_config(client, values, check_mode=False, create_missing=False):
    """Set tb_config_sistema keys. Returns changed, before/after per key, and the keys not found."""
    if not values:
        return {"changed": False, "before": {}, "after": {}, "missing": []}
    keys = ", ".join(sql_literal(k) for k in values)
    current = dict(
        client.query(f"SELECT co_config_sistema, ds_texto FROM tb_config_sistema WHERE co_config_sistema IN ({keys})")
    )
    missing = sorted(k for k in values if k not in current)
    before, after, stmts = {}, {}, []
    for key, value in values.items():
        value = None if value is None else str(value)
        if key in current:
            before[key] = current[key]
            after[key] = value
            if current[key] != value:
                stmts.append(
                    f"UPDATE tb_config_sistema SET ds_texto = {sql_literal(value)}"
                    f" WHERE co_config_sistema = {sql_literal(key)}"
                )
        elif create_missing:
            before[key] = None
            after[key] = value
            stmts.append(
                "INSERT INTO tb_config_sistema (co_config_sistema, ds_texto)"
                f" VALUES ({sql_literal(key)}, {sql_literal(value)})"
            )
    changed = bool(stmts)
    if changed and not check_mode:
        client.query("BEGIN;\n" + ";\n".join(stmts) + ";\nCOMMIT;\n")
    return {
        "changed": changed,
        "before": before,
        "after": after,
        "missing": [] if create_missing else missing,
    }
