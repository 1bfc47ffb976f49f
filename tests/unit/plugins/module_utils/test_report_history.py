"""The report's history on the control node: small, read back for the 12-month trends, readable by a later
collection, and a damaged or foreign file skipped and said, never fatal."""

from __future__ import annotations

import datetime
import gzip
import json
import os

import pytest
from report_fixtures import SETTINGS, TODAY, fleet, healthy_pec, host, nightly_year, synthetic_fleet, write_day

from ansible_collections.sesdf.esus.plugins.module_utils import report_history, report_html, report_model
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

REGION = "regiao_norte"


def model_of(hosts, today=TODAY):
    return report_model.build(hosts, SETTINGS, today)


def size_of(directory):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _s, names in os.walk(directory) for n in names)


# ------------------------------------------------------------------------------------------- size and reading
def test_a_year_of_nightly_runs_of_200_ubs_takes_a_few_megabytes_and_reads_back_month_by_month(tmp_path):
    model = model_of(synthetic_fleet(200))
    nightly_year(str(tmp_path), model)
    assert len(os.listdir(tmp_path / REGION)) == 365
    size = size_of(tmp_path)
    assert size < 3 * 1024 * 1024, f"{size} bytes for a year of 200 UBS"
    history = report_history.load(str(tmp_path), model, TODAY)
    assert history["skipped"] == []
    trends = report_history.region_trends(history, [REGION], TODAY)
    assert trends["months"] == ["2026-01", *[f"2026-{m:02d}" for m in range(2, 13)]]
    assert all(trends["pendencias"][m]["ubs"] == 200 for m in trends["months"]), "every month has its last day"
    # November's figures are those of its last night (30/11: back = 1)
    last_night = report_history.decode((tmp_path / REGION / "2026-11-30.json.gz").read_bytes(), REGION, "2026-11-30")[0]
    assert trends["pendencias"]["2026-11"]["media"] == sum(e["p"][2] for e in last_night.values())
    # today's month is this run's, as written
    assert trends["pendencias"]["2026-12"]["ubs"] == 200
    assert trends["pendencias"]["2026-12"]["alta"] == sum(
        1 for r in model["rows"] for p in r["pendencias"] if p["severity"] == "alta"
    )
    cds = trends["cds"]["counts"]
    assert sum(cds["2026-10"].values()) == sum(1 for e in last_night.values() if "c" in e)


def test_an_older_schema_file_as_written_before_still_reads(tmp_path):
    """The schema-1 file as this collection writes it, kept here as it is: a later collection must read it."""
    frozen = {
        "schema": 1,
        "kind": "sesdf.esus/historico-relatorio",
        "region": "regiao_norte",
        "date": "2026-06-30",
        "cols": [
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
        ],
        "ubs": [
            {
                "h": "ubs-saudavel",
                "s": "aguardando_migracao",
                "r": "local_server",
                "p": [0, 1, 2],
                "k": "oovoooaoooo-",
                "b": 3,
                "o": "failed",
                "d": "nunca",
                "q": "ok",
                "c": {"m": "2026-05", "u": {"0010001": "atrasado"}},
            }
        ],
    }
    folder = tmp_path / REGION
    folder.mkdir()
    (folder / "2026-06-30.json.gz").write_bytes(gzip.compress(json.dumps(frozen).encode()))
    model = model_of(fleet())
    history = report_history.load(str(tmp_path), model, TODAY)
    assert history["skipped"] == []
    trends = report_history.region_trends(history, [REGION], TODAY)
    assert trends["pendencias"]["2026-06"] == {"critica": 0, "alta": 1, "media": 2, "ubs_com_acao": 1, "ubs": 1}
    assert trends["backup"]["2026-06"] == {"em_dia": 0, "atrasado": 1, "sem_registro": 0}
    assert trends["copia_externa"]["2026-06"]["com_problema"] == 1 and trends["restauracao"]["2026-06"]["nunca"] == 1
    assert trends["cds"]["counts"]["2026-05"]["atrasado"] == 1
    ubs = report_history.ubs_trends(history, REGION, "ubs-saudavel", TODAY)
    assert ubs["backup_age"]["2026-06"] == 3 and ubs["grid"]["backup"]["2026-06"]["v"] == 1


def test_a_file_of_an_older_layout_without_some_fields_reads_them_as_no_data(tmp_path):
    """A file whose columns are fewer and in another order, and whose entries lack fields: each is read by its
    name, what the file does not say is shown as no data, never as ok."""
    doc = {
        "schema": 1,
        "kind": "sesdf.esus/historico-relatorio",
        "region": REGION,
        "date": "2026-07-31",
        "cols": ["backup", "situacao"],
        "ubs": [{"h": "ubs-saudavel", "k": "vo"}],
    }
    folder = tmp_path / REGION
    folder.mkdir()
    (folder / "2026-07-31.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode()))
    history = report_history.load(str(tmp_path), model_of(fleet()), TODAY)
    item = history["days"][REGION]["2026-07-31"]["ubs-saudavel"]
    assert item["k"] == "o?v?????????" and "p" not in item and "b" not in item
    ubs = report_history.ubs_trends(history, REGION, "ubs-saudavel", TODAY)
    assert ubs["pendencias"]["2026-07"] is None and ubs["backup_age"]["2026-07"] is None
    assert ubs["grid"]["hardening"]["2026-07"]["?"] == 1
    page = report_html.ubs_page(model_of(fleet()), model_of(fleet())["rows"][0], history)
    assert "sem dado" in page


# ------------------------------------------------------------------------------------------ what is skipped
def test_damaged_foreign_future_and_newer_files_are_skipped_and_said_and_the_rest_is_read(tmp_path):
    model = model_of(fleet())
    good = {r["host"]: report_history.entry(r) for r in model["rows"] if r["region"] == REGION}
    write_day(str(tmp_path), REGION, "2026-10-31", good)
    folder = tmp_path / REGION
    (folder / "2026-09-30.json.gz").write_bytes(report_history.encode(REGION, "2026-09-30", good)[:40])
    (folder / "2026-08-31.json.gz").write_bytes(b"not gzip at all")
    (folder / "2026-07-31.json.gz").write_bytes(gzip.compress(b'{"some": "other program"}'))
    newer = {"schema": 2, "kind": report_history.KIND, "region": REGION, "date": "2026-06-30", "ubs": []}
    (folder / "2026-06-30.json.gz").write_bytes(gzip.compress(json.dumps(newer).encode()))
    (folder / "2026-12-25.json.gz").write_bytes(report_history.encode(REGION, "2026-12-25", good))
    (folder / "2026-05-31.json.gz").write_bytes(report_history.encode(REGION, "2026-04-30", good))
    (folder / "notas.txt").write_text("anotações do operador")
    mixed = dict(good)
    raw = json.loads(gzip.decompress(report_history.encode(REGION, "2026-04-30", mixed)))
    raw["ubs"] += ["lixo", {"h": 3}, None]
    (folder / "2026-04-30.json.gz").write_bytes(gzip.compress(json.dumps(raw).encode()))
    history = report_history.load(str(tmp_path), model, TODAY)
    said = dict(s.split(": ", 1) for s in history["skipped"])
    assert said["regiao_norte/2026-09-30.json.gz"].startswith("arquivo danificado")
    assert said["regiao_norte/2026-08-31.json.gz"].startswith("arquivo danificado")
    assert said["regiao_norte/2026-07-31.json.gz"] == "não é um arquivo do histórico do relatório"
    assert said["regiao_norte/2026-06-30.json.gz"].startswith("gravado por uma versão mais nova da coleção")
    assert said["regiao_norte/2026-12-25.json.gz"].startswith("data depois do dia do relatório")
    assert said["regiao_norte/2026-05-31.json.gz"].startswith("o conteúdo é de outro dia ou região")
    assert said["regiao_norte/notas.txt"].startswith("não é um arquivo do histórico")
    assert (
        said["regiao_norte/2026-04-30.json.gz"] == "3 registro(s) que não são de uma UBS ignorado(s); o resto foi lido"
    )
    assert sorted(history["days"][REGION]) == ["2026-04-30", "2026-10-31", "2026-12-01"]
    assert set(history["days"][REGION]["2026-04-30"]) == set(good)
    # the region's page says it, and renders
    page = report_html.region_page(model, model["regions"][1], history)
    assert "Arquivos do histórico ignorados (o resto foi lido)" in page and "regiao_norte/notas.txt" in page


def test_an_unreadable_history_directory_is_said_not_fatal(tmp_path):
    (tmp_path / REGION).write_text("a file where the region's directory belongs")
    history = report_history.load(str(tmp_path), model_of(fleet()), TODAY)
    assert history["skipped"][0].startswith("regiao_norte/: não pôde ser lido")


# ------------------------------------------------------------------------------------------------ writing
def test_the_days_file_is_written_once_a_rerun_changes_nothing_and_check_mode_writes_nothing(tmp_path):
    model = model_of(fleet())
    history = report_history.load(str(tmp_path), model, TODAY)
    assert report_history.save(history, check_mode=True) == [
        "regiao_norte/2026-12-01.json.gz",
        "regiao_sul/2026-12-01.json.gz",
    ], "a region with no UBS in this run has no file"
    assert not os.path.exists(tmp_path / REGION)
    assert report_history.save(history) == ["regiao_norte/2026-12-01.json.gz", "regiao_sul/2026-12-01.json.gz"]
    assert oct(os.stat(tmp_path / REGION / "2026-12-01.json.gz").st_mode & 0o777) == "0o640"
    again = report_history.load(str(tmp_path), model_of(fleet()), TODAY)
    assert report_history.save(again) == [], "same state, same bytes"


def test_a_run_that_did_not_read_a_ubs_keeps_what_an_earlier_run_of_the_day_recorded(tmp_path):
    """A run limited to some UBS (or one where a UBS did not answer) does not erase the day's reading of the
    others; a UBS read again replaces its entry."""
    report_history.save(report_history.load(str(tmp_path), model_of(fleet()), TODAY))
    limited = fleet()
    for entry in limited:
        if entry["host"] != "ubs-saudavel":
            entry["pec"] = None
    limited[0]["pec"]["backup_status"]["restore_drill"] = {"result": "failed", "finished_at": "2026-11-30T05:00:00Z"}
    history = report_history.load(str(tmp_path), model_of(limited), TODAY)
    day = history["days"][REGION]["2026-12-01"]
    assert day["ubs-saudavel"]["d"] == "falha"
    assert day["ubs-backup"]["r"] == "local_server" and day["ubs-fora"]["r"] == "inacessivel"


def test_files_older_than_400_days_are_removed_when_the_region_is_written(tmp_path):
    entries = {"ubs-saudavel": {"h": "ubs-saudavel", "s": "inapta"}}
    old = (TODAY - datetime.timedelta(days=401)).isoformat()
    kept = (TODAY - datetime.timedelta(days=400)).isoformat()
    for day in (old, kept):
        write_day(str(tmp_path), REGION, day, entries)
    (tmp_path / REGION / "leia-me.txt").write_text("x")
    history = report_history.load(str(tmp_path), model_of(fleet()), TODAY)
    assert report_history.save(history, check_mode=True) == [
        "regiao_norte/2026-12-01.json.gz",
        f"regiao_norte/{old}.json.gz",
        "regiao_sul/2026-12-01.json.gz",
    ]
    assert (tmp_path / REGION / f"{old}.json.gz").exists(), "check mode removes nothing"
    report_history.save(history)
    assert sorted(os.listdir(tmp_path / REGION)) == [f"{kept}.json.gz", "2026-12-01.json.gz", "leia-me.txt"]


def test_a_history_directory_that_cannot_be_written_says_what_to_do(tmp_path):
    blocker = tmp_path / "arquivo"
    blocker.write_text("x")
    history = report_history.load(str(blocker / "historico"), model_of(fleet()), TODAY)
    with pytest.raises(PecError, match="set report_history_dir to a writable directory"):
        report_history.save(history)
    history["dir"] = "historico"
    with pytest.raises(PecError, match="must be an absolute path"):
        report_history.save(history)


# ------------------------------------------------------------------------------------------------ the trends
def test_each_ubs_history_marks_its_columns_as_the_page_does():
    pec = healthy_pec()
    pec["state"]["hardening"]["stale"] = True
    pec["backup_status"]["age_hours"] = 90.0
    row = model_of([host("h", pec=pec)])["rows"][0]
    item = report_history.entry(row)
    marks = dict(zip(report_history.COLUMNS, item["k"], strict=True))
    assert marks["backup"] == "v" and marks["hardening"] == "a" and marks["versao"] == "o"
    assert item["p"] == [0, 1, 1] and item["o"] == "ok" and item["d"] == "ok" and item["b"] == 1
    assert item["c"] == {"m": "2026-11", "u": {"0010001": "em_dia"}}
    gone = report_history.entry(model_of([host("g", pec=None)])["rows"][0])
    assert gone["r"] == "inacessivel" and gone["k"] == "v" + "-" * 11 and "o" not in gone
