"""pec_production: monthly production per team and unit, on a real PostgreSQL with the double's schema."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_production import gather, month_firsts, summarize

BASELINE = pathlib.Path(__file__).parents[3] / "pec_double" / "sql" / "baseline-4.2.8.sql"
DB = "sesdf_production_test"
TODAY = datetime.date(2026, 12, 1)

# Two teams in one unit; synthetic attendances in Oct and Nov 2026 (and one outside the 12-month window);
# transmission rows of November: 3 in a lote the ledger confirmed, 2 in a lote the PEC marked sent, 4 in no lote.
SEED = """
INSERT INTO tb_unidade_saude (nu_cnes, no_unidade_saude) VALUES ('0010001', 'UBS 1 Teste');
INSERT INTO tb_equipe (nu_ine, no_equipe, co_unidade_saude)
  VALUES ('0000000011', 'ESF Azul', 1), ('0000000022', 'ESF Verde', 1);
INSERT INTO tb_prof (no_profissional, nu_cpf)
  VALUES ('Profissional Um', '00000000191'), ('Profissional Dois', '00000000272');
INSERT INTO tb_ator_papel (co_prof, tp_ator_papel) VALUES (1, 'LOTACAO'), (2, 'LOTACAO');
INSERT INTO tb_lotacao (co_ator_papel, co_cbo, co_unidade_saude, co_equipe) VALUES (1, 1, 1, 1), (2, 3, 1, 2);
INSERT INTO tb_cidadao (no_cidadao) SELECT 'Cidadão sintético ' || g FROM generate_series(1, 5) g;
INSERT INTO tb_atend (co_cidadao, co_lotacao, dt_inicio)
  SELECT 1, 1, timestamp '2026-11-03 09:00' + g * interval '1 hour' FROM generate_series(1, 7) g;
INSERT INTO tb_atend (co_cidadao, co_lotacao, dt_inicio)
  SELECT 2, 2, timestamp '2026-10-15 10:00' + g * interval '1 hour' FROM generate_series(1, 4) g;
INSERT INTO tb_atend (co_cidadao, co_lotacao, dt_inicio) VALUES (3, 2, '2025-11-30 10:00');
INSERT INTO tb_lote_transp (co_situacao, dt_geracao, dt_inicio_periodo, dt_fim_periodo, qt_registros)
  VALUES (1, now(), '2026-11-01', '2026-11-30', 3);
INSERT INTO tb_lote_transp (co_situacao, dt_geracao, dt_envio, dt_inicio_periodo, dt_fim_periodo, qt_registros)
  VALUES (2, now(), '2026-12-01 01:00', '2026-11-01', '2026-11-30', 2);
INSERT INTO tb_dado_transp (nu_uuid, tp_dado, co_unidade_saude, dt_registro, co_lote_transp, ds_dado)
  SELECT gen_random_uuid(), 4, 1, timestamp '2026-11-05 08:00' + g * interval '1 minute',
         CASE WHEN g <= 3 THEN 1 WHEN g <= 5 THEN 2 ELSE NULL END, '\\x00'::bytea FROM generate_series(1, 9) g;
"""


@pytest.fixture(scope="module")
def pec_db(pg_server):
    conn = {k: pg_server[k] for k in ("host", "port", "user", "password")}
    with PgClient(pg_server["bin_dir"], dict(conn, name="postgres")) as client:
        client.query(f"DROP DATABASE IF EXISTS {DB}")
        client.query(f"CREATE DATABASE {DB}")
    with PgClient(pg_server["bin_dir"], dict(conn, name=DB)) as client:
        client.query(BASELINE.read_text(encoding="utf-8"))
        client.query(SEED)
    return pg_server["bin_dir"], dict(conn, name=DB)


@pytest.mark.nt("NT-gsap-1")
def test_production_per_team_and_unit_with_ledger_and_pec_confirmations(pec_db, tmp_path):
    ledger = tmp_path / "ledger.json"
    ledger.write_text(json.dumps({"format": 1, "lotes": {"1": {"confirmed_at": "2026-11-30T23:00:00"}}}))
    bin_dir, conn = pec_db
    with PgClient(bin_dir, conn) as client:
        doc = gather(client, today=TODAY, ledger_path=str(ledger))
        queries = client.executed_queries
    assert doc["available"] and doc["window"] == {"from": "2026-01-01", "to": "2027-01-01"}
    teams = {t["ine"]: t for t in doc["teams"]}
    assert teams["0000000011"]["months"] == {"2026-11": {"produced": 7}}
    assert teams["0000000022"]["months"] == {"2026-10": {"produced": 4}}, "the 2025 record is outside the window"
    assert doc["units"][0]["months"]["2026-11"] == {"produced": 9, "sent": 5, "pending": 4}
    prev = doc["previous_month"]
    assert prev["month"] == "2026-11" and prev["deadline"] == "2026-12-10" and prev["days_left"] == 9
    assert prev["complete"] is False and prev["units"] == [
        {"cnes": "0010001", "pending": 4, "complete": False, "on_time": False}
    ]
    assert all(q.lstrip().upper().startswith("SELECT") for q in queries), "read-only"
    assert all("dt_inicio >=" in q or "dt_registro >=" in q for q in queries if "count(*)" in q), "bounded"


def test_without_the_ledger_only_the_pec_s_own_sent_lotes_count(pec_db):
    bin_dir, conn = pec_db
    with PgClient(bin_dir, conn) as client:
        doc = gather(client, today=TODAY, ledger_path="/nonexistent/ledger.json")
    assert doc["units"][0]["months"]["2026-11"] == {"produced": 9, "sent": 2, "pending": 7}


def test_a_corrupt_ledger_is_reported_not_fatal(pec_db, tmp_path):
    ledger = tmp_path / "ledger.json"
    ledger.write_text("{not json")
    bin_dir, conn = pec_db
    with PgClient(bin_dir, conn) as client:
        doc = gather(client, today=TODAY, ledger_path=str(ledger))
    assert "ledger_error" in doc and doc["units"][0]["months"]["2026-11"]["sent"] == 2


def test_a_schema_without_teams_makes_that_view_unavailable(pec_db):
    bin_dir, conn = pec_db
    with PgClient(bin_dir, conn) as client:
        client.query("ALTER TABLE tb_equipe RENAME COLUMN nu_ine TO nu_ine_x")
        try:
            doc = gather(client, today=TODAY)
        finally:
            client.query("ALTER TABLE tb_equipe RENAME COLUMN nu_ine_x TO nu_ine")
    assert doc["teams"] == [] and "tb_equipe.nu_ine" in doc["teams_unavailable"]
    assert doc["available"] is True and doc["units"], "the unit view still works"


def test_months_and_overdue_deadline():
    months = month_firsts(datetime.date(2026, 1, 20), 3)
    assert [m.isoformat() for m in months] == ["2025-11-01", "2025-12-01", "2026-01-01"]
    units = [("0010001", "2025-12", None, None, None, 2)]
    doc = summarize([], units, {}, months, datetime.date(2026, 1, 20))
    assert doc["previous_month"]["deadline"] == "2026-01-10" and doc["previous_month"]["days_left"] == -10
    assert doc["previous_month"]["complete"] is False
