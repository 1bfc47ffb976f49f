# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Export of the PEC's production not yet sent ("lotes") and their transfer to NCAIS, without loss.

One implementation used by the ``sesdf.esus.pec_lotes`` module and by the weekly job that inapt UBS
run without Ansible (``cli_main``). Python stdlib only. This file holds the entry points; the parts are
``lotes_ledger`` (the ledger), ``lotes_db`` (db mode), ``lotes_files`` (file mode: the inbox),
``lotes_delivery`` (destinations and the one delivery step) and ``lotes_records`` (records gate, CDS deadline).

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

import contextlib
import dataclasses
import datetime
import json
import os
import sys
import typing

from ansible_collections.sesdf.esus.plugins.module_utils import _paths, lotes_records
from ansible_collections.sesdf.esus.plugins.module_utils._job import (
    EXIT_ATTENTION,
    EXIT_FAILED,
    EXIT_OK,
    JobConfig,
    job_main,
    write_status_quiet,
)
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import local_now_iso, next_month
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_db import Exporter, LotesDb
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_delivery import DEFAULT_FILE_PATTERN, make_destination
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_files import (
    DEFAULT_FILES_DIR,
    DEFAULT_FILES_GLOB,
    DEFAULT_SETTLE_SECONDS,
    FILE_DEST_NAMES,
    FileExporter,
)
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_ledger import Ledger
from ansible_collections.sesdf.esus.plugins.module_utils.lotes_records import (
    deadline_status,
    observe_records,
    previous_month,
    records_reader,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import Probe
from ansible_collections.sesdf.esus.plugins.module_utils.pec_state import write_state

JOB_TAG = "sesdf-esus-lotes"
SOURCES = ("auto", "db", "files")


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
    """Everything one run does; used by the module and the weekly job. Returns the result dict.

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
        out.append(
            f"{result['pending']} arquivo(s) de lote não confirmado(s) no destino (nova tentativa na próxima execução)"
        )
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


@dataclasses.dataclass
class LotesJobConfig(JobConfig):
    """The weekly lotes job's configuration (written by sesdf.esus.lotes_export; docs/jobs.md)."""

    source: str = "auto"
    files_dir: str = DEFAULT_FILES_DIR
    files_glob: str = DEFAULT_FILES_GLOB
    files_settle_seconds: int = DEFAULT_SETTLE_SECONDS
    state_dir: str = _paths.LOTES_STATE_DIR
    destination: dict = dataclasses.field(default_factory=dict)
    cnes: str = ""
    file_pattern: str = DEFAULT_FILE_PATTERN
    max_records_per_lote: int = 0
    reverify_confirmed: bool = True
    situation_generated: str = "GERADO"
    situation_sent: str = "ENVIADO"
    export_situations: typing.List[str] = dataclasses.field(default_factory=lambda: ["GERADO"])
    deadline_day: int = 10
    status_file: typing.Optional[str] = None
    records_uuid_column: str = "co_unico_dado_serializado"
    schema_trust: str = "survey"
    capability_profiles: typing.List[dict] = dataclasses.field(default_factory=list)
    node_query: str = ""
    node_query_requires: dict = dataclasses.field(default_factory=dict)
    pec: dict = dataclasses.field(default_factory=dict)
    db_timeout: int = 300
    facts_dir: str = DEFAULT_FACTS_DIR


def _lotes_arguments(parser):
    parser.add_argument("--check", action="store_true", help="show what would be done, change nothing")


def _lotes_job(config, args, log):
    from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import pec_argument_spec
    from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
    from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall

    options = config.as_dict()
    stamp = local_now_iso()
    params = {k: v.get("default") for k, v in pec_argument_spec().items()}
    params.update({k: v for k, v in config.pec.items() if k in params})
    try:
        install = PecInstall(params)
        with PgClient(install.pg_bin_dir(), install.connection(), timeout=config.db_timeout) as client:
            result = run_export(client, options, check_mode=args.check, log=log)
    except (OSError, ValueError) as exc:
        log(f"ERRO: a instalação do PEC em {params.get('pec_root')} não pôde ser lida: {exc}", "err")
        return EXIT_FAILED
    summary = public_result(result) | {"errors": result["errors"], "deadline": result["deadline"], "at": stamp}
    for item in (result.get("files") or {}).get("invalid", []):
        log(f"AVISO: lote {item['file']} inválido, não enviado e deixado na pasta: {item['reason']}", "warning")
    sys.stdout.write(json.dumps(summary, ensure_ascii=False, sort_keys=True) + "\n")
    if config.status_file and not args.check:
        write_status_quiet(config.status_file, summary, 0o644)
    if not args.check:
        try:
            record_state(result, config.facts_dir)
        except PecError as exc:
            log(f"AVISO: estado para o relatório não gravado: {exc.msg}", "warning")
    attention = result["pending"] or result["errors"] or (result.get("files") or {}).get("invalid")
    return EXIT_ATTENTION if attention else EXIT_OK


def cli_main(argv=None):
    """``sesdf-esus-lotes --config /etc/sesdf-esus/lotes-export.json``: the weekly job, without Ansible.

    Exit codes (module_utils/_job.py): 0 every lote confirmed at the destination; 1 error before anything could be
    done; 2 configuration unreadable or invalid; 3 some lote still pending or invalid (retried next run).
    """
    return job_main(
        JOB_TAG,
        "Exportação semanal de lotes para o NCAIS",
        LotesJobConfig,
        _lotes_job,
        argv,
        default_config=_paths.CONFIG_DIR + "/lotes-export.json",
        role="lotes_export",
        add_arguments=_lotes_arguments,
    )
