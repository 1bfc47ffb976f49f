"""Lotes on the real PEC's model, against a real PostgreSQL with the strict double's per-node schema.

A week of production: some records delivered online to a node, some saved by the operator as RAS_Lote files into
the inbox, some not exported at all. What these prove: the gate names exactly the missing records; a record counts
as delivered only in a delivered file or where the node query observes it; garbage, foreign-CNES, truncated and
duplicate files are refused with their reason and nothing of them delivered; nothing is sent twice; the CDS month
comes from when the collection first saw a record; the PEC's tables are only read.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import os
from pathlib import Path

import pytest
from ledi_helpers import dado_transporte, ras_lote
from test_lotes import WRITES, psql

from ansible_collections.sesdf.esus.plugins.module_utils import lotes, lotes_records, pec_migration
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

REPO = Path(__file__).resolve().parents[4]
SCHEMA = REPO / "tests" / "pec_double" / "sql" / "baseline-4.2.8.sql"
STRICT = REPO / "tests" / "pec_double" / "sql" / "strict" / "transmissao-por-nodo.sql"
CNES = "0010001"
IBGE = "5300108"
_counter = itertools.count()
_uuid = itertools.count(1)

# What IT would write from a survey of the double (its columns end in _dbl: nothing in the collection names them).
NODE_QUERY = (
    "SELECT d.co_unico_dado_serializado FROM tb_dado_transp d"
    " JOIN tb_lote_transp_item i ON i.co_dado_transp_dbl = d.co_seq_dado_transp"
    " JOIN tb_lote_transp_item_nodo n ON n.co_lote_transp_item_dbl = i.co_seq_lote_transp_item_dbl"
    " JOIN tb_situacao_lote_transp_nodo s ON s.co_situacao_dbl = n.co_situacao_dbl"
    " WHERE s.no_situacao_dbl = 'ENVIADO'"
)
NODE_REQUIRES = {
    "tb_dado_transp": ["co_unico_dado_serializado", "co_seq_dado_transp"],
    "tb_lote_transp_item": ["co_dado_transp_dbl", "co_seq_lote_transp_item_dbl"],
    "tb_lote_transp_item_nodo": ["co_lote_transp_item_dbl", "co_situacao_dbl"],
    "tb_situacao_lote_transp_nodo": ["co_situacao_dbl", "no_situacao_dbl"],
}


def new_uuid():
    n = next(_uuid)
    return f"{n:08x}-1234-4abc-8def-{os.getpid():06x}{n:06x}"


@pytest.fixture
def real_db(pg_server):
    """A fresh database with the strict double's schema (transmission per node) and one unit."""
    name = f"esus_real_{os.getpid()}_{next(_counter)}"
    psql(pg_server, f"CREATE DATABASE {name}", "postgres")
    psql(pg_server, SCHEMA.read_text() + "\n" + STRICT.read_text(), name)
    psql(pg_server, f"INSERT INTO tb_unidade_saude (nu_cnes, no_unidade_saude) VALUES ('{CNES}', 'UBS')", name)  # noqa: S608
    conn = {k: pg_server[k] for k in ("host", "port", "user", "password")} | {"name": name}
    yield {"server": pg_server, "conn": conn, "name": name}
    psql(pg_server, f"DROP DATABASE {name} WITH (FORCE)", "postgres")


def add_records(pec, n, tipo=4):
    """n records the PEC holds (no lote yet): their uuids."""
    ids = [new_uuid() for _unused in range(n)]
    values = ",".join(
        f"('{u}', {tipo}, 1, now(), '\\x{dado_transporte(uuid=u, tipo=tipo, cnes=CNES, ibge=IBGE).hex()}'::bytea)"
        for u in ids
    )
    psql(
        pec["server"],
        "INSERT INTO tb_dado_transp (co_unico_dado_serializado, tp_dado_dbl, co_unidade_saude_dbl, dt_registro_dbl,"  # noqa: S608
        " ds_dado_dbl) VALUES " + values,
        pec["name"],
    )
    return ids


def send_online(pec, ids, situation=2):
    """What the PEC's automatic transmission does: the records in a lote, sent to the node (per item)."""
    quoted = ",".join(f"'{u}'" for u in ids)
    psql(
        pec["server"],
        f"""WITH lt AS (INSERT INTO tb_lote_transp (dt_criacao, dt_inicio_periodo_dbl, dt_fim_periodo_dbl,
            qt_registros_dbl) VALUES (now(), now(), now(), {len(ids)}) RETURNING co_seq_lote_transp),
        it AS (INSERT INTO tb_lote_transp_item (co_lote_transp_dbl, co_dado_transp_dbl)
            SELECT lt.co_seq_lote_transp, d.co_seq_dado_transp FROM lt, tb_dado_transp d
            WHERE d.co_unico_dado_serializado IN ({quoted}) RETURNING co_seq_lote_transp_item_dbl)
        INSERT INTO tb_lote_transp_item_nodo (co_lote_transp_item_dbl, co_nodo_dbl, co_situacao_dbl)
            SELECT it.co_seq_lote_transp_item_dbl, 1, {situation} FROM it""",  # noqa: S608
        pec["name"],
    )


def save_file(inbox, ids, number, cnes=CNES, **record):
    """The operator's "Salvar em arquivo" of these records, dropped into the inbox (settled an hour ago)."""
    name = f"RAS_Lote{number}_01-12-2026--10-{number % 60:02d}.zip"
    path = inbox / name
    data = ras_lote([dict(uuid=u, cnes=cnes, ibge=IBGE, **record) for u in ids], top=name[:-4])
    path.write_bytes(data)
    then = os.path.getmtime(path) - 3600
    os.utime(path, (then, then))
    return name, hashlib.sha256(data).hexdigest()


@pytest.fixture
def inbox(tmp_path):
    (tmp_path / "entrada").mkdir()
    (tmp_path / "ncais").mkdir()
    return tmp_path / "entrada"


def run(pec, tmp_path, client=None, check_mode=False, **opts):
    options = {
        "source": "files",
        "files_dir": str(tmp_path / "entrada"),
        "state_dir": str(tmp_path / "state"),
        "destination": {"type": "path", "path": str(tmp_path / "ncais")},
        "cnes": CNES,
        "node_query": NODE_QUERY,
        "node_query_requires": NODE_REQUIRES,
        "today": "2026-12-01",
    } | opts
    if client is not None:
        return lotes.run_export(client, options, check_mode=check_mode)
    with PgClient(pec["server"]["bin_dir"], pec["conn"]) as fresh:
        return lotes.run_export(fresh, options, check_mode=check_mode)


def gate(pec, tmp_path, **params):
    params = {
        "lotes_source": "files",
        "lotes_files_dir": str(tmp_path / "entrada"),
        "lotes_ledger": str(tmp_path / "state" / "ledger.json"),
        "backup_fact": str(tmp_path / "no-backup.fact"),
        "cnes": CNES,
        "node_query": NODE_QUERY,
        "node_query_requires": NODE_REQUIRES,
    } | params
    with PgClient(pec["server"]["bin_dir"], pec["conn"]) as client:
        return pec_migration.preflight(client, params)


def test_a_week_online_in_files_and_not_exported_the_gate_names_exactly_the_missing_records(real_db, tmp_path, inbox):
    online = add_records(real_db, 6)
    send_online(real_db, online)
    saved = add_records(real_db, 5)
    save_file(inbox, saved, 3)
    never = add_records(real_db, 4)
    result = run(real_db, tmp_path)
    g = result["gate"]
    assert (g["db_records"], g["at_node"], g["delivered_in_files"], g["missing"]) == (15, 6, 5, 4)
    assert g["missing_sample"] == sorted(never) and not g["ok"]
    assert result["sent"] == 1 and result["confirmed"] == 1
    problems = gate(real_db, tmp_path)["problems"]
    assert any("4 registro(s)" in p and never[0] in p for p in problems), problems
    assert any("Salvar em arquivo" in p for p in problems)
    save_file(inbox, never, 4)
    closed = run(real_db, tmp_path)
    assert closed["gate"]["ok"] and closed["gate"]["missing"] == 0 and closed["sent"] == 1
    assert [p for p in gate(real_db, tmp_path)["problems"] if "registro" in p or "lote file" in p] == []


def test_without_a_node_query_online_delivery_is_not_verifiable_and_blocks(real_db, tmp_path, inbox):
    online = add_records(real_db, 3)
    send_online(real_db, online)
    result = run(real_db, tmp_path, node_query="")
    g = result["gate"]
    assert g["node_observable"] is False and g["at_node"] is None and g["missing"] == 3
    assert "não é verificável" in g["node_note"]
    assert any("não é verificável" in p for p in lotes.files_blockers(result))


def test_a_node_query_naming_what_this_schema_lacks_is_not_run(real_db, tmp_path, inbox):
    online = add_records(real_db, 2)
    send_online(real_db, online)
    with PgClient(real_db["server"]["bin_dir"], real_db["conn"]) as client:
        result = run(real_db, tmp_path, client=client, node_query_requires={"tb_lote_transp_item_nodo": ["st_envio"]})
        executed = list(client.executed_queries)
    assert (
        result["gate"]["node_observable"] is False
        and "tb_lote_transp_item_nodo.st_envio" in result["gate"]["node_note"]
    )
    assert not [q for q in executed if "tb_lote_transp_item_nodo" in q and "information_schema" not in q]


def test_records_not_yet_sent_online_do_not_count_as_delivered(real_db, tmp_path, inbox):
    waiting = add_records(real_db, 3)
    send_online(real_db, waiting, situation=1)  # AGUARDANDO_ENVIO: in a lote, not at the node
    g = run(real_db, tmp_path)["gate"]
    assert g["at_node"] == 0 and g["missing"] == 3


def test_garbage_foreign_truncated_and_duplicate_files_are_refused_and_nothing_of_them_delivered(
    real_db, tmp_path, inbox
):
    ids = add_records(real_db, 4)
    good, good_digest = save_file(inbox, ids, 5)
    data = (inbox / good).read_bytes()
    (inbox / "RAS_Lote6_01-12-2026--10-06.zip").write_bytes(b"\x00garbage" * 40)
    (inbox / "RAS_Lote7_01-12-2026--10-07.zip").write_bytes(data[: len(data) // 2])
    save_file(inbox, ids[:2], 8, cnes="7654321")
    stranger = [new_uuid()]
    save_file(inbox, stranger, 9)  # a lote of another server: its record is not in this PEC's database
    for name in os.listdir(inbox):
        then = os.path.getmtime(inbox / name) - 3600
        os.utime(inbox / name, (then, then))
    result = run(real_db, tmp_path)
    invalid = {i["file"]: i["reason"] for i in result["files"]["invalid"]}
    assert set(invalid) == {
        "RAS_Lote6_01-12-2026--10-06.zip",
        "RAS_Lote7_01-12-2026--10-07.zip",
        "RAS_Lote8_01-12-2026--10-08.zip",
        "RAS_Lote9_01-12-2026--10-09.zip",
    }
    assert "7654321" in invalid["RAS_Lote8_01-12-2026--10-08.zip"]
    assert "não estão no banco" in invalid["RAS_Lote9_01-12-2026--10-09.zip"]
    assert sorted(os.listdir(tmp_path / "ncais")) == sorted(
        [f"{CNES}-RAS_Lote5_01-12-2026--10-05-{good_digest[:12]}.zip"] * 1
        + [f"{CNES}-RAS_Lote5_01-12-2026--10-05-{good_digest[:12]}.zip.sha256"]
    )
    # the same records saved again (another lote file): refused, nothing sent twice
    save_file(inbox, ids[1:3], 10)
    again = run(real_db, tmp_path)
    reasons = {i["file"]: i["reason"] for i in again["files"]["invalid"]}
    assert "já estão no lote" in reasons["RAS_Lote10_01-12-2026--10-10.zip"] and again["sent"] == 0
    assert len(os.listdir(tmp_path / "ncais")) == 2


def test_file_mode_on_the_real_model_only_reads_the_pec_tables(real_db, tmp_path, inbox):
    ids = add_records(real_db, 3)
    save_file(inbox, ids, 2)
    with PgClient(real_db["server"]["bin_dir"], real_db["conn"]) as client:
        run(real_db, tmp_path, client=client)
        executed = [q for q in client.executed_queries if q.strip() not in ("BEGIN TRANSACTION READ ONLY",)]
    assert executed and not [q for q in executed if any(w in q.upper().split() for w in WRITES)], executed


@pytest.mark.nt("NT-cds-1")
def test_cds_month_comes_from_when_the_collection_first_saw_a_record(real_db, tmp_path, inbox):
    add_records(real_db, 2)  # there before the first run: the baseline, no month
    run(real_db, tmp_path, today="2026-10-20")
    november = add_records(real_db, 3)
    run(real_db, tmp_path, today="2026-11-12")
    early = run(real_db, tmp_path, today="2026-12-05")["deadline"]
    assert early["month"] == "2026-11" and early["units"][0]["records"] == 3
    assert early["units"][0]["status"] == "pendente" and early["days_left"] == 5
    save_file(inbox, november, 11)
    done = run(real_db, tmp_path, today="2026-12-08")["deadline"]
    assert done["units"][0]["status"] == "em_dia" and done["ok"]
    late = lotes_records.records_deadline(
        {u: "2026-11-12" for u in november},
        {u: "2026-12-15" for u in november},
        {},
        CNES,
        datetime.date(2026, 12, 20),
        datetime.date(2026, 11, 1),
    )
    assert late["units"][0]["status"] == "enviado_com_atraso"


def test_records_unreadable_close_the_gate_as_not_verifiable(real_db, tmp_path, inbox):
    result = run(real_db, tmp_path, records_uuid_column="nu_uuid")
    assert result["gate"]["observable"] is False and "nu_uuid" in result["gate"]["why"]
    assert any("não verificável" in p for p in lotes.files_blockers(result))
    assert result["deadline"] is None


def test_check_mode_writes_no_ledger_no_record_ids_and_sends_nothing(real_db, tmp_path, inbox):
    ids = add_records(real_db, 2)
    save_file(inbox, ids, 2)
    check = run(real_db, tmp_path, check_mode=True)
    assert check["sent"] == 1 and check["gate"]["missing"] == 2
    assert not (tmp_path / "state").exists() and os.listdir(tmp_path / "ncais") == []


def test_the_ledger_keeps_each_files_record_ids_and_no_personal_data(real_db, tmp_path, inbox):
    ids = add_records(real_db, 3)
    _name, digest = save_file(inbox, ids, 2)
    run(real_db, tmp_path)
    ledger = json.loads((tmp_path / "state" / "ledger.json").read_text())
    entry = ledger["files"][digest]
    assert entry["records"] == 3 and entry["records_by_type"] == {"4": 3}
    kept = (tmp_path / "state" / entry["uuids_file"]).read_text().split()
    assert kept == sorted(ids)
    everything = (tmp_path / "state" / "ledger.json").read_text()
    assert "00000000191" not in everything and "Sintetica" not in everything


def test_an_invalid_file_left_in_the_inbox_is_a_warning_once_every_record_is_delivered(real_db, tmp_path, inbox):
    ids = add_records(real_db, 3)
    save_file(inbox, ids, 2)
    run(real_db, tmp_path)
    (inbox / "RAS_Lote3_01-12-2026--10-03.zip").write_bytes(b"lixo")
    then = os.path.getmtime(inbox / "RAS_Lote3_01-12-2026--10-03.zip") - 3600
    os.utime(inbox / "RAS_Lote3_01-12-2026--10-03.zip", (then, then))
    ready = gate(real_db, tmp_path)
    assert ready["files"]["records"]["ok"] and ready["files"]["problems"] == []
    assert not [p for p in ready["problems"] if "lote" in p or "registro" in p]  # only the backup (none here)
    assert any("RAS_Lote3_01-12-2026--10-03.zip" in w for w in ready["warnings"])
    add_records(real_db, 1)  # production after the last lote: the gate closes again, whatever the inbox holds
    assert any("1 registro(s)" in p for p in gate(real_db, tmp_path)["problems"])
