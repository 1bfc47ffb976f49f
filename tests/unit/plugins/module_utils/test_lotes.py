"""Export of production lotes and their transfer to NCAIS, against a real PostgreSQL with the double's schema.

What these prove: exported lotes hold exactly the pending transmission rows (count and bytes); a transfer
cut half-way and rerun delivers every lote exactly once; a lote altered at the destination is detected and
sent again; a destination that is down loses nothing; the job entry point does the same as the module.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils import (
    _transfer,
    lotes,
    lotes_db,
    lotes_delivery,
    lotes_files,
    lotes_records,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

REPO = Path(__file__).resolve().parents[4]
SCHEMA = REPO / "tests" / "pec_double" / "sql" / "baseline-4.2.8.sql"
CNES = "0010001"
_counter = itertools.count()


def psql(server, sql, db):
    env = {"PGPASSWORD": server["password"], "PATH": os.environ["PATH"]}
    subprocess.run(
        [
            f"{server['bin_dir']}/psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            server["host"],
            "-p",
            str(server["port"]),
            "-U",
            server["user"],
            "-d",
            db,
        ],
        input=sql,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def pec_db(pg_server):
    """A fresh database with the PEC double's schema, one unit and sent lotes; returns a connection dict."""
    if not SCHEMA.exists():
        pytest.skip("PEC double schema not present")
    name = f"esus_lotes_{os.getpid()}_{next(_counter)}"
    psql(pg_server, f"CREATE DATABASE {name}", "postgres")
    psql(pg_server, SCHEMA.read_text(), name)
    psql(
        pg_server,
        f"INSERT INTO tb_unidade_saude (nu_cnes, no_unidade_saude) VALUES ('{CNES}', 'UBS Sintética');"  # noqa: S608
        "INSERT INTO tb_lote_transp (dt_inicio_periodo, dt_fim_periodo, co_situacao, qt_registros, dt_envio)"
        " VALUES ('2024-01-01', '2024-01-07', 2, 1, '2024-01-08');"
        "INSERT INTO tb_dado_transp (nu_uuid, tp_dado, co_unidade_saude, dt_registro, co_lote_transp, ds_dado)"
        " VALUES (gen_random_uuid(), 4, 1, '2024-01-02 09:00', 1, '\\x0b00'::bytea);",
        name,
    )
    conn = {k: pg_server[k] for k in ("host", "port", "user", "password")} | {"name": name}
    yield {"server": pg_server, "conn": conn, "name": name}
    psql(pg_server, f"DROP DATABASE {name} WITH (FORCE)", "postgres")


def add_pending(pec, n, start="2024-05-03 10:00", step_days=1):
    rows = {}
    values = []
    base = datetime.datetime.fromisoformat(start)
    for i in range(n):
        u = str(uuid.uuid4())
        data = hashlib.sha256(u.encode()).digest() * (1 + i % 5) + bytes([i % 256, 0, 10, 13])
        rows[u] = data
        when = base + datetime.timedelta(days=step_days * (i % 20))
        values.append(f"('{u}', {2 if i % 3 == 0 else 4}, 1, '{when.isoformat(sep=' ')}', '\\x{data.hex()}'::bytea)")
    psql(
        pec["server"],
        "INSERT INTO tb_dado_transp (nu_uuid, tp_dado, co_unidade_saude, dt_registro, ds_dado) VALUES "  # noqa: S608
        + ",".join(values),
        pec["name"],
    )
    return rows


def run(pec, tmp_path, dest=None, **opts):
    dest = dest or tmp_path / "ncais"
    options = {
        "state_dir": str(tmp_path / "state"),
        "destination": {"type": "path", "path": str(dest)},
        "cnes": CNES,
        "today": "2024-06-05",
        "schema_trust": "double",  # the old model's writes: the full double's schema
    } | opts
    with PgClient(pec["server"]["bin_dir"], pec["conn"]) as client:
        return lotes.run_export(client, options)


def query(pec, sql):
    with PgClient(pec["server"]["bin_dir"], pec["conn"]) as client:
        return client.query(sql)


def dest_lotes(dest):
    """{lote file name: {uuid: bytes}} of the zips at the destination, and the names of everything there."""
    names = sorted(os.listdir(dest))
    return {n: lotes_db.read_lote_zip((dest / n).read_bytes()) for n in names if n.endswith(".zip")}, names


@pytest.mark.nt("NT-inapta-8")
def test_exported_lotes_hold_exactly_the_pending_rows_and_arrive_verified(pec_db, tmp_path):
    rows = add_pending(pec_db, 37)
    (tmp_path / "ncais").mkdir()
    result = run(pec_db, tmp_path, max_records_per_lote=15)
    assert (result["exported"], result["sent"], result["confirmed"], result["pending"]) == (3, 3, 3, 0)
    assert result["errors"] == []
    zips, names = dest_lotes(tmp_path / "ncais")
    assert len(zips) == 3 and len(names) == 6  # 3 lotes + 3 manifests, no temporary file
    delivered = {}
    for content in zips.values():
        assert not set(content) & set(delivered)
        delivered.update(content)
    assert delivered == rows  # same uuids, same DadoTransporte bytes
    for lote in result["lotes"][-3:]:
        manifest = json.loads((tmp_path / "ncais" / lote["file"].replace(".zip", ".manifest.json")).read_text())
        assert manifest["sha256"] == hashlib.sha256((tmp_path / "ncais" / lote["file"]).read_bytes()).hexdigest()
        assert manifest["records"] == lote["records"] and manifest["period"]["start"] >= "2024-05-03"
    # tb_lote_transp rows as the PEC makes them, now ENVIADO; no row left without a lote
    db = query(
        pec_db,
        "SELECT co_situacao, qt_registros, dt_envio IS NOT NULL FROM tb_lote_transp WHERE co_seq_lote_transp > 1",
    )
    assert sorted(int(r[1]) for r in db) == [7, 15, 15] and all(r[0] == "2" and r[2] == "t" for r in db)
    assert query(pec_db, "SELECT count(*) FROM tb_dado_transp WHERE co_lote_transp IS NULL") == [["0"]]
    ledger = json.loads((tmp_path / "state" / "ledger.json").read_text())
    assert all(e["confirmed_at"] for e in ledger["lotes"].values())
    assert oct(os.stat(tmp_path / "state" / "ledger.json").st_mode & 0o777) == "0o600"


def test_second_run_sends_nothing_again(pec_db, tmp_path):
    add_pending(pec_db, 5)
    (tmp_path / "ncais").mkdir()
    run(pec_db, tmp_path)
    again = run(pec_db, tmp_path)
    assert (again["exported"], again["sent"], again["confirmed"], again["pending"], again["changed"]) == (
        0,
        0,
        0,
        0,
        False,
    )


def test_transfer_killed_half_way_then_rerun_delivers_every_lote_exactly_once(pec_db, tmp_path, monkeypatch):
    rows = add_pending(pec_db, 30)
    dest = tmp_path / "ncais"
    dest.mkdir()
    puts = []
    real_put = _transfer.PathDestination.put

    def counting_put(self, local, name):
        puts.append(name)
        return real_put(self, local, name)

    monkeypatch.setattr(_transfer.PathDestination, "put", counting_put)
    real_copy = _transfer.copy_stream
    calls = itertools.count()

    def cut(src, dst):
        if next(calls) == 2:  # the second lote's zip: half of it, then the process dies
            dst.write(src.read()[:100])
            raise KeyboardInterrupt("killed")
        return real_copy(src, dst)

    monkeypatch.setattr(_transfer, "copy_stream", cut)
    with pytest.raises(KeyboardInterrupt):
        run(pec_db, tmp_path, max_records_per_lote=10)
    # the cut file is only a hidden .part: the one complete lote is the only .zip NCAIS sees
    zips, names = dest_lotes(dest)
    assert len(zips) == 1 and any(n.endswith(".zip.part") and n.startswith(".") for n in names)
    monkeypatch.setattr(_transfer, "copy_stream", real_copy)
    result = run(pec_db, tmp_path, max_records_per_lote=10)
    assert result["pending"] == 0 and result["errors"] == []
    zips, names = dest_lotes(dest)
    assert len(zips) == 3 and len(names) == 6
    assert {u: d for c in zips.values() for u, d in c.items()} == rows
    zip_puts = [n for n in puts if n.endswith(".zip")]
    assert sorted(set(zip_puts)) == sorted(zips)
    assert len(zip_puts) == 4  # 3 lotes + the one cut: the first lote was not sent twice
    assert zip_puts.count(zip_puts[0]) == 1
    final = run(pec_db, tmp_path, max_records_per_lote=10)
    assert final["sent"] == 0 and final["changed"] is False


def test_lote_altered_at_the_destination_is_detected_and_sent_again(pec_db, tmp_path):
    add_pending(pec_db, 8)
    dest = tmp_path / "ncais"
    dest.mkdir()
    first = run(pec_db, tmp_path)
    lote = first["lotes"][-1]
    target = dest / lote["file"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    again = run(pec_db, tmp_path)
    assert again["resent"] == 1 and again["errors"] == []
    assert hashlib.sha256(target.read_bytes()).hexdigest() == lote["sha256"]
    # a lote NCAIS moved away after importing it is not sent again
    target.unlink()
    later = run(pec_db, tmp_path)
    assert later["sent"] == 0 and not target.exists()


def test_destination_down_loses_nothing_and_the_next_run_completes(pec_db, tmp_path):
    rows = add_pending(pec_db, 12)
    dest = tmp_path / "ncais"  # not mounted yet
    down = run(pec_db, tmp_path)
    assert down["exported"] == 1 and down["confirmed"] == 0 and down["pending"] == 1
    assert "not mounted" in down["errors"][0]["msg"]
    assert query(pec_db, "SELECT co_situacao FROM tb_lote_transp ORDER BY co_seq_lote_transp DESC LIMIT 1") == [
        ["1"]
    ]  # GERADO
    dest.mkdir()
    up = run(pec_db, tmp_path)
    assert (up["exported"], up["confirmed"], up["pending"]) == (0, 1, 0)
    zips = dest_lotes(dest)[0]
    assert {u: d for c in zips.values() for u, d in c.items()} == rows


def test_lote_created_but_never_written_is_rebuilt_from_the_database(pec_db, tmp_path):
    """A run killed between the database commit and the file write: the next run finds the GERADO lote."""
    rows = add_pending(pec_db, 6)
    with PgClient(pec_db["server"]["bin_dir"], pec_db["conn"]) as client:
        lote_id = lotes_db.LotesDb(client).create_lote()
    (tmp_path / "ncais").mkdir()
    result = run(pec_db, tmp_path)
    assert result["exported"] == 0 and result["confirmed"] == 1
    assert result["lotes"][-1]["id"] == lote_id
    zips = dest_lotes(tmp_path / "ncais")[0]
    assert {u: d for c in zips.values() for u, d in c.items()} == rows


@pytest.mark.nt("NT-cds-1")
def test_deadline_of_the_previous_month_per_unit(pec_db, tmp_path):
    add_pending(pec_db, 10, start="2024-05-25 08:00")  # 7 rows in May, 3 in June
    (tmp_path / "ncais").mkdir()
    before = run(pec_db, tmp_path, transfer=False, export=False, today="2024-06-04")["deadline"]
    assert before["month"] == "2024-05" and before["deadline"] == "2024-06-10" and before["days_left"] == 6
    assert before["units"] == [
        {
            "cnes": CNES,
            "records": 7,
            "confirmed_records": 0,
            "last_confirmed_at": None,
            "pending_records": 7,
            "complete": False,
            "on_time": False,
            "status": "pendente",
        }
    ]
    late = run(pec_db, tmp_path, transfer=False, export=False, today="2024-06-11")["deadline"]
    assert late["units"][0]["status"] == "atrasado" and late["days_left"] == -1
    done = run(pec_db, tmp_path, today="2024-06-04")["deadline"]
    assert done["units"][0]["complete"] and done["units"][0]["confirmed_records"] == 7


def test_deadline_synthetic_month_statuses():
    month = datetime.date(2024, 12, 1)
    ledger = {"5": {"confirmed_at": "2025-01-09T10:00:00"}, "6": {"confirmed_at": "2025-01-12T10:00:00"}}
    rows = [
        ("0000001", 5, 1, None, 10),
        ("0000002", 6, 1, None, 4),
        ("0000003", None, None, None, 2),
        ("0000004", 9, 2, "2025-01-03T00:00:00", 3),
    ]
    out = lotes_records.deadline_status(rows, ledger, datetime.date(2025, 1, 12), month, sent_code=2)
    assert out["month"] == "2024-12" and out["deadline"] == "2025-01-10" and out["days_left"] == -2
    assert [u["status"] for u in out["units"]] == ["em_dia", "enviado_com_atraso", "atrasado", "em_dia"]
    assert lotes_records.previous_month(datetime.date(2025, 1, 12)) == month
    assert not out["ok"]


def pec_root_of(pec, tmp_path):
    """A PEC install tree whose application.properties points at the test database (what the job reads)."""
    root = tmp_path / "e-SUS"
    (root / "webserver" / "config").mkdir(parents=True)
    c = pec["conn"]
    (root / "webserver" / "config" / "application.properties").write_text(
        f"spring.datasource.url=jdbc:postgresql://{c['host']}:{c['port']}/{c['name']}\n"
        f"spring.datasource.username={c['user']}\nspring.datasource.password={c['password']}\n"
    )
    return root


def test_job_entry_point_runs_without_ansible_and_reuses_the_module_code(pec_db, tmp_path):
    rows = add_pending(pec_db, 4)
    root = pec_root_of(pec_db, tmp_path)
    (tmp_path / "ncais").mkdir()
    config = {
        "state_dir": str(tmp_path / "state"),
        "cnes": CNES,
        "status_file": str(tmp_path / "status.json"),
        "destination": {"type": "path", "path": str(tmp_path / "ncais")},
        "pec": {"pec_root": str(root), "pg_bin_dir": pec_db["server"]["bin_dir"]},
        "schema_trust": "double",
    }
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    env = dict(os.environ)  # PYTHONPATH holds the collection, as it does for pytest
    code = (
        "import sys; from ansible_collections.sesdf.esus.plugins.module_utils.lotes import cli_main; "
        "sys.exit(cli_main())"
    )
    proc = subprocess.run(
        ["python3", "-c", code, "--config", str(tmp_path / "cfg.json")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["exported"] == 1 and summary["pending"] == 0 and summary["lotes"][-1]["confirmed"]
    assert pec_db["conn"]["password"] not in proc.stdout + proc.stderr
    zips = dest_lotes(tmp_path / "ncais")[0]
    assert {u: d for z in zips.values() for u, d in z.items()} == rows
    assert json.loads((tmp_path / "status.json").read_text())["confirmed"] == 1
    bad = subprocess.run(
        ["python3", "-c", code, "--config", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and "missing.json" in bad.stderr and "sesdf.esus.lotes_export" in bad.stderr


def test_a_path_destination_removes_only_stale_partials_of_lotes(tmp_path):
    share = tmp_path / "gpma"
    share.mkdir()
    names = {
        ".lote-0010001-7.zip.part": True,  # a copy killed half-way, hours ago
        ".lote-0010001-7.manifest.json.part": True,
        ".relatorio-7.zip.part": False,  # not a lote of ours
        ".lote-0010001-8.zip.part.bak": False,
    }
    for name in names:
        (share / name).write_bytes(b"half")
        then = os.path.getmtime(share / name) - 7 * 3600
        os.utime(share / name, (then, then))
    src = tmp_path / "lote-0010001-9.zip"
    src.write_bytes(b"zip")
    dest = lotes_delivery.make_destination({"type": "path", "path": str(share)}, "lote-{cnes}-{id}.zip")
    dest.put(str(src), src.name)
    kept = {name for name, stale in names.items() if not stale}
    assert set(os.listdir(share)) == kept | {src.name}


# File mode: the lote files saved from the PEC (LEDI content), on the full double's old schema, where the records
# cannot be read (no co_unico_dado_serializado): delivery works, the records gate is "não verificável". The real
# model's gate is in test_lotes_records.py. ---------------------------------------------------------------------

WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "ALTER", "CREATE", "DROP", "COPY", "GRANT")


def pec_lote_file(path, n=3, entries=None, age=3600):
    """A lote file as the PEC saves it (a zip of ``<CNES>-<uuid>.esus`` LEDI entries), modified ``age`` seconds ago.
    ``entries``: names to put in it instead (a ``.esus`` name gets a valid record of a new uuid)."""
    import zipfile

    from ledi_helpers import dado_transporte

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in entries or [f"{CNES}-{uuid.uuid4()}.esus" for _i in range(n)]:
            record = str(uuid.uuid4())
            if name.endswith(".esus"):
                name = f"{CNES}-{record}.esus"
            archive.writestr(name, dado_transporte(uuid=record, cnes=CNES, ibge="5300108"))
    then = os.path.getmtime(path) - age
    os.utime(path, (then, then))
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def age(path, seconds=3600):
    then = os.path.getmtime(path) - seconds
    os.utime(path, (then, then))


def run_files(pec, tmp_path, client=None, **opts):
    options = {
        "source": "files",
        "files_dir": str(tmp_path / "lotes"),
        "files_glob": "*.zip",
        "state_dir": str(tmp_path / "state"),
        "destination": {"type": "path", "path": str(tmp_path / "ncais")},
        "cnes": CNES,
        "schema_trust": "double",
    } | opts
    check = options.pop("check_mode", False)
    if client is not None:
        return lotes.run_export(client, options, check_mode=check)
    with PgClient(pec["server"]["bin_dir"], pec["conn"]) as fresh:
        return lotes.run_export(fresh, options, check_mode=check)


def dest_digests(dest):
    """{sha256: [names]} of the zips at the destination."""
    out = {}
    for name in sorted(os.listdir(dest)):
        if name.endswith(".zip"):
            out.setdefault(hashlib.sha256((dest / name).read_bytes()).hexdigest(), []).append(name)
    return out


def transmission_tables(pec):
    return query(
        pec,
        "SELECT 'l', co_seq_lote_transp::text, co_situacao::text, dt_envio::text, qt_registros::text"
        " FROM tb_lote_transp"
        " UNION ALL SELECT 'd', co_seq_dado_transp::text, co_lote_transp::text, nu_uuid::text, md5(ds_dado)"
        " FROM tb_dado_transp ORDER BY 1, 2",
    )


@pytest.fixture
def watched(tmp_path):
    (tmp_path / "lotes").mkdir()
    (tmp_path / "ncais").mkdir()
    return tmp_path / "lotes"


def test_file_mode_sends_a_valid_pec_lote_once_and_records_it_in_the_ledger(pec_db, tmp_path, watched):
    digest = pec_lote_file(watched / "lote-7.zip")
    first = run_files(pec_db, tmp_path)
    assert first["source"] == "files" and first["errors"] == [] and first["files"]["invalid"] == []
    assert (first["exported"], first["sent"], first["confirmed"], first["pending"], first["changed"]) == (
        0,
        1,
        1,
        0,
        True,
    )
    at_dest = dest_digests(tmp_path / "ncais")
    assert list(at_dest) == [digest] and len(at_dest[digest]) == 1
    assert at_dest[digest][0] == f"{CNES}-lote-7-{digest[:12]}.zip"
    assert not [n for n in os.listdir(tmp_path / "ncais") if n.startswith(".")]  # nothing partial left
    ledger = json.loads((tmp_path / "state" / "ledger.json").read_text())
    entry = ledger["files"][digest]
    assert entry["confirmed_at"] and entry["names"] == ["lote-7.zip"] and entry["records"] == 3
    assert ledger["lotes"] == {}  # the db mode's section is untouched
    assert (watched / "lote-7.zip").exists()  # the PEC's file stays where the PEC put it
    again = run_files(pec_db, tmp_path)
    assert (again["sent"], again["confirmed"], again["pending"], again["changed"]) == (0, 0, 0, False)
    assert again["files"]["already_sent"] == ["lote-7.zip"]
    assert dest_digests(tmp_path / "ncais") == at_dest


def test_file_mode_the_same_bytes_under_a_new_name_are_not_sent_again(pec_db, tmp_path, watched):
    digest = pec_lote_file(watched / "lote-7.zip")
    run_files(pec_db, tmp_path)
    (watched / "lote-7.zip").rename(watched / "salvo-pelo-operador.zip")
    renamed = run_files(pec_db, tmp_path)
    assert renamed["sent"] == 0 and renamed["pending"] == 0
    (watched / "copia.zip").write_bytes((watched / "salvo-pelo-operador.zip").read_bytes())
    age(watched / "copia.zip")
    copied = run_files(pec_db, tmp_path)
    assert copied["sent"] == 0 and copied["errors"] == []
    assert len(dest_digests(tmp_path / "ncais")[digest]) == 1
    ledger = json.loads((tmp_path / "state" / "ledger.json").read_text())
    assert list(ledger["files"]) == [digest]
    assert ledger["files"][digest]["names"] == ["lote-7.zip", "salvo-pelo-operador.zip", "copia.zip"]


def test_file_mode_rejects_invalid_files_reports_why_and_leaves_them_in_place(pec_db, tmp_path, watched):
    import zipfile

    pec_lote_file(watched / "bom.zip")
    good = (watched / "bom.zip").read_bytes()
    (watched / "truncado.zip").write_bytes(good[: len(good) // 2])
    pec_lote_file(watched / "estranho.zip", entries=[f"{CNES}-a.esus", "leiame.txt"])
    with zipfile.ZipFile(watched / "vazio.zip", "w"):
        pass
    (watched / "zero.zip").write_bytes(b"")
    corrupt = bytearray(good)
    corrupt[30 + len(f"{CNES}-{uuid.uuid4()}.esus") + 20] ^= 0xFF  # inside the first entry's compressed data
    (watched / "corrompido.zip").write_bytes(bytes(corrupt))
    for name in os.listdir(watched):
        age(watched / name)
    before = {n: (watched / n).read_bytes() for n in os.listdir(watched)}
    result = run_files(pec_db, tmp_path)
    invalid = {i["file"]: i["reason"] for i in result["files"]["invalid"]}
    assert set(invalid) == {"truncado.zip", "estranho.zip", "vazio.zip", "zero.zip", "corrompido.zip"}
    assert "zip válido" in invalid["truncado.zip"] and "leiame.txt" in invalid["estranho.zip"]
    assert "vazio" in invalid["vazio.zip"] and "0 bytes" in invalid["zero.zip"]
    assert "corrompido" in invalid["corrompido.zip"]
    assert result["sent"] == 1 and list(dest_digests(tmp_path / "ncais")) == [hashlib.sha256(good).hexdigest()]
    assert {n: (watched / n).read_bytes() for n in os.listdir(watched)} == before  # none deleted or touched
    ledger = json.loads((tmp_path / "state" / "ledger.json").read_text())
    assert [e["file"] for e in ledger["files"].values()] == ["bom.zip"]


def test_file_mode_skips_a_file_still_being_written_and_sends_it_once_settled(pec_db, tmp_path, watched):
    digest = pec_lote_file(watched / "lote-8.zip", age=0)
    (watched / ".lote-9.zip").write_bytes(b"partial")
    age(watched / ".lote-9.zip")
    young = run_files(pec_db, tmp_path, files_settle_seconds=300)
    skipped = {s["file"]: s["reason"] for s in young["files"]["skipped"]}
    assert set(skipped) == {"lote-8.zip", ".lote-9.zip"} and "300 s" in skipped["lote-8.zip"]
    assert young["sent"] == 0 and young["files"]["invalid"] == [] and os.listdir(tmp_path / "ncais") == []
    age(watched / "lote-8.zip", 600)
    settled = run_files(pec_db, tmp_path, files_settle_seconds=300)
    assert settled["sent"] == 1 and list(dest_digests(tmp_path / "ncais")) == [digest]


class DamagingDestination(_transfer.PathDestination):
    """A share that damages the first copy of every file (what arrives differs from what was sent)."""

    def __init__(self, path):
        super().__init__(path)
        self.puts = []

    def put(self, local_path, name, expected_sha256=None, what=None):
        self.puts.append(name)
        if self.puts.count(name) == 1:
            data = bytearray(Path(local_path).read_bytes())
            data[-1] ^= 0xFF
            (Path(self.path) / name).write_bytes(bytes(data))
            return 0
        return super().put(local_path, name, expected_sha256, what)


def test_file_mode_a_delivery_that_fails_verification_is_retried_next_run_then_sent_once(
    pec_db, tmp_path, watched, monkeypatch
):
    digest = pec_lote_file(watched / "lote-3.zip")
    dest = DamagingDestination(str(tmp_path / "ncais"))
    monkeypatch.setattr(lotes, "make_destination", lambda spec, *a, **k: dest)
    bad = run_files(pec_db, tmp_path)
    assert bad["confirmed"] == 0 and bad["pending"] == 1 and "sha256" in bad["errors"][0]["msg"]
    ledger = json.loads((tmp_path / "state" / "ledger.json").read_text())
    assert ledger["files"][digest]["confirmed_at"] is None and ledger["files"][digest]["last_error"]
    good = run_files(pec_db, tmp_path)
    assert (good["sent"], good["confirmed"], good["pending"], good["errors"]) == (1, 1, 0, [])
    assert list(dest_digests(tmp_path / "ncais")) == [digest]
    assert run_files(pec_db, tmp_path)["sent"] == 0
    assert len(dest.puts) == 2


def test_file_mode_executes_no_sql_write_and_leaves_the_transmission_tables_unchanged(pec_db, tmp_path, watched):
    add_pending(pec_db, 4)  # production the PEC has not put into a lote yet
    pec_lote_file(watched / "lote-2.zip")
    before = transmission_tables(pec_db)
    with PgClient(pec_db["server"]["bin_dir"], pec_db["conn"]) as client:
        check = run_files(pec_db, tmp_path, client=client, check_mode=True)
        result = run_files(pec_db, tmp_path, client=client)
        executed = list(client.executed_queries)
    assert check["sent"] == 1 and check["files"]["to_send"] == ["lote-2.zip"] and check["changed"]
    assert result["sent"] == 1 and result["gate"]["observable"] is False  # the old schema: records not readable
    assert executed and all(q.lstrip().upper().startswith("SELECT") for q in executed), executed
    assert not [q for q in executed if any(w in q.upper().split() for w in WRITES)]
    assert transmission_tables(pec_db) == before
    assert any("não verificável" in b for b in lotes.files_blockers(result))  # a migration keeps waiting


def test_file_mode_check_mode_sends_nothing_and_writes_no_ledger(pec_db, tmp_path, watched):
    pec_lote_file(watched / "lote-2.zip")
    check = run_files(pec_db, tmp_path, check_mode=True)
    assert check["sent"] == 1 and check["confirmed"] == 0 and check["pending"] == 1
    assert os.listdir(tmp_path / "ncais") == [] and not (tmp_path / "state").exists()


def test_auto_picks_files_when_the_probe_says_the_schema_is_unsupported(pec_db, tmp_path, watched):
    pec_lote_file(watched / "lote-4.zip")
    assert run_files(pec_db, tmp_path, source="auto", check_mode=True)["source"] == "db"
    psql(pec_db["server"], "ALTER TABLE tb_lote_transp DROP COLUMN dt_envio", pec_db["name"])
    result = run_files(pec_db, tmp_path, source="auto")
    assert result["source"] == "files" and result["source_requested"] == "auto"
    assert result["compat"]["mark_lotes_sent"]["supported"] is False and result["sent"] == 1
    assert lotes.public_result(result)["source"] == "files"


def test_file_mode_migration_gate_on_a_schema_whose_records_cannot_be_read_is_closed(pec_db, tmp_path, watched):
    from ansible_collections.sesdf.esus.plugins.module_utils import pec_migration

    pec_lote_file(watched / "lote-5.zip")
    (watched / "lote-6.zip").write_bytes(b"PK\x03\x04 truncado")
    age(watched / "lote-6.zip")
    params = {
        "lotes_source": "files",
        "lotes_files_dir": str(watched),
        "lotes_files_glob": "*.zip",
        "lotes_ledger": str(tmp_path / "state" / "ledger.json"),
        "backup_fact": str(tmp_path / "no-backup.fact"),
    }

    def gate():
        with PgClient(pec_db["server"]["bin_dir"], pec_db["conn"]) as client:
            return pec_migration.preflight(client, params)

    before = gate()
    assert before["files"]["unconfirmed"] == ["lote-5.zip"] and before["files"]["invalid"][0]["file"] == "lote-6.zip"
    assert not [p for p in before["problems"] if "generated but not sent" in p]  # not a file mode question
    run_files(pec_db, tmp_path)
    (watched / "lote-6.zip").rename(tmp_path / "lote-6.zip")  # the operator moves the bad file away
    after = gate()
    assert after["files"]["confirmed"] == 1 and after["files"]["records"]["observable"] is False
    assert any("não verificável" in p for p in after["problems"])  # never passes without seeing the records
    params["lotes_source"] = "db"
    psql(pec_db["server"], "UPDATE tb_lote_transp SET co_situacao = 1", pec_db["name"])  # the PEC's, GERADO
    assert any("generated but not sent" in p for p in gate()["problems"])  # db mode's gate as it was


def test_job_entry_point_in_file_mode(pec_db, tmp_path, watched):
    root = pec_root_of(pec_db, tmp_path)
    digest = pec_lote_file(watched / "lote-1.zip")
    config = {
        "source": "files",
        "files_dir": str(watched),
        "files_glob": "lote-*.zip",
        "files_settle_seconds": 60,
        "state_dir": str(tmp_path / "state"),
        "cnes": CNES,
        "destination": {"type": "path", "path": str(tmp_path / "ncais")},
        "pec": {"pec_root": str(root), "pg_bin_dir": pec_db["server"]["bin_dir"]},
        "schema_trust": "double",
    }
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    code = (
        "import sys; from ansible_collections.sesdf.esus.plugins.module_utils.lotes import cli_main; "
        "sys.exit(cli_main())"
    )

    def cron():
        return subprocess.run(
            ["python3", "-c", code, "--config", str(tmp_path / "cfg.json")],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            check=False,
        )

    proc = cron()
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["source"] == "files" and summary["sent"] == 1 and summary["lotes"][0]["sha256"] == digest
    (watched / "lote-2.zip").write_bytes(b"not a zip")
    age(watched / "lote-2.zip")
    proc = cron()
    assert proc.returncode == 3 and "lote-2.zip" in proc.stderr and json.loads(proc.stdout)["sent"] == 0


def test_file_mode_a_file_altered_at_the_destination_is_sent_again_from_the_pec_file(pec_db, tmp_path, watched):
    digest = pec_lote_file(watched / "lote-7.zip")
    first = run_files(pec_db, tmp_path)
    target = tmp_path / "ncais" / first["lotes"][0]["dest_file"]
    target.write_bytes(b"altered")
    again = run_files(pec_db, tmp_path)
    assert again["resent"] == 1 and again["errors"] == [] and hashlib.sha256(target.read_bytes()).hexdigest() == digest
    target.unlink()  # NCAIS imported it and moved it away: not sent again
    assert run_files(pec_db, tmp_path)["sent"] == 0 and not target.exists()


def test_file_mode_an_altered_copy_whose_resend_fails_is_pending_again_and_closes_the_gate(
    pec_db, tmp_path, watched, monkeypatch
):
    digest = pec_lote_file(watched / "lote-9.zip")
    first = run_files(pec_db, tmp_path)
    target = tmp_path / "ncais" / first["lotes"][0]["dest_file"]
    target.write_bytes(b"altered")

    def refuse(self, local_path, name, expected_sha256=None, what=None):
        raise PecError("sem espaço no destino")

    real_put = _transfer.PathDestination.put
    monkeypatch.setattr(_transfer.PathDestination, "put", refuse)
    failed = run_files(pec_db, tmp_path)
    assert failed["resent"] == 0 and failed["pending"] == 1 and "sem espaço" in failed["errors"][0]["msg"]
    ledger = json.loads((tmp_path / "state" / "ledger.json").read_text())
    assert ledger["files"][digest]["confirmed_at"] is None
    assert lotes_files.files_gate(ledger, str(watched), "*.zip")["unconfirmed"] == ["lote-9.zip"]
    monkeypatch.setattr(_transfer.PathDestination, "put", real_put)
    again = run_files(pec_db, tmp_path)
    assert again["sent"] == 1 and again["confirmed"] == 1 and again["pending"] == 0
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest


def test_an_unknown_source_is_refused_before_anything_is_read(pec_db, tmp_path, watched):
    with pytest.raises(PecError, match="unknown lotes source"):
        run_files(pec_db, tmp_path, source="ftp")
