"""The PEC's internal id of a município, read with IT's query from a survey (module_utils pec_municipio, module
pec_municipio), against a real PostgreSQL: a synthetic tb_localidade whose columns end in _dbl (nothing in the
collection names them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.ledi import ibge_with_check_digit
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_municipio import find_municipio_id, municipio_query

QUERY = "SELECT co_localidade_dbl FROM tb_localidade WHERE co_ibge_dbl = %(ibge)s"
MODULE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules", "pec_municipio.py")


@pytest.fixture
def localidades(pg_server):
    conn = {k: pg_server[k] for k in ("host", "port", "user", "password")}
    name = "mun_" + uuid.uuid4().hex[:10]
    with PgClient(pg_server["bin_dir"], dict(conn, name="postgres")) as admin:
        admin.query(f"CREATE DATABASE {name}")
    conn = dict(conn, name=name)
    with PgClient(pg_server["bin_dir"], conn) as client:
        client.query(
            "CREATE TABLE tb_localidade (co_localidade_dbl bigint PRIMARY KEY, co_ibge_dbl text,"
            " no_localidade_dbl text);"
            "INSERT INTO tb_localidade VALUES (5584, '5300108', 'Brasília'), (3830, '3550308', 'São Paulo'),"
            " (7001, '9999990', 'Duplicada A'), (7002, '9999990', 'Duplicada B')"
        )
    yield pg_server["bin_dir"], conn
    with PgClient(pg_server["bin_dir"], dict(conn, name="postgres")) as admin:
        admin.query(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def find(localidades, query=QUERY, ibge="530010"):
    bin_dir, conn = localidades
    with PgClient(bin_dir, conn) as client:
        return find_municipio_id(client, query, ibge)


def rows(localidades):
    bin_dir, conn = localidades
    with PgClient(bin_dir, conn) as client:
        return client.query("SELECT count(*) FROM tb_localidade")[0][0]


@pytest.mark.parametrize(
    ("code", "seven"),
    [("530010", "5300108"), ("355030", "3550308"), ("330455", "3304557"), ("5300108", "5300108"), ("5300", None)],
)
def test_a_six_digit_ibge_code_gets_its_check_digit(code, seven):
    assert ibge_with_check_digit(code) == seven


def test_the_ibge_code_goes_into_the_query_as_a_quoted_literal():
    sql, code = municipio_query(QUERY + ";", "530010")
    assert code == "5300108" and sql == QUERY.replace("%(ibge)s", "'5300108'")


def test_one_row_is_the_id(localidades):
    assert find(localidades) == {"municipio_id": "5584", "rows": 1, "ibge": "5300108", "message": None}
    assert find(localidades, ibge="3550308")["municipio_id"] == "3830"
    assert find(localidades, query=QUERY + " -- the survey's note")["municipio_id"] == "5584"


@pytest.mark.parametrize(("ibge", "count"), [("1100015", 0), ("9999990", 2)])
def test_zero_or_several_rows_give_no_id_and_say_how_many(localidades, ibge, count):
    found = find(localidades, ibge=ibge)
    assert found["municipio_id"] is None and found["rows"] == count
    assert f"devolveu {count} linhas (esperada 1)" in found["message"]
    assert "cnes_import_pec_municipio_id ou cnes_import_municipio_query" in found["message"]


def test_a_query_this_schema_cannot_run_fails_naming_the_variable(localidades):
    with pytest.raises(PecError) as failed:
        find(localidades, query="SELECT co_seq_localidade FROM tb_localidade WHERE co_ibge = %(ibge)s")
    assert "cnes_import_municipio_query failed" in failed.value.msg and "co_seq_localidade" in failed.value.msg


def test_a_query_that_would_write_is_refused_by_the_read_only_transaction(localidades):
    with pytest.raises(PecError, match="read-only transaction"):
        find(
            localidades, query="WITH gone AS (DELETE FROM tb_localidade RETURNING co_localidade_dbl) SELECT * FROM gone"
        )
    assert rows(localidades) == "4"


def test_more_than_one_column_is_refused(localidades):
    with pytest.raises(PecError, match="returned 2 columns"):
        find(
            localidades,
            query="SELECT co_localidade_dbl, no_localidade_dbl FROM tb_localidade WHERE co_ibge_dbl = %(ibge)s",
        )


@pytest.mark.parametrize(
    ("query", "ibge", "message"),
    [
        ("SELECT 1; DROP TABLE tb_localidade", "530010", "single SELECT"),
        ("DELETE FROM tb_localidade", "530010", "single SELECT"),
        (QUERY, "53001", "not 6 or 7 digits"),
    ],
)
def test_what_cannot_be_a_read_only_lookup_is_refused_before_the_database(query, ibge, message):
    with pytest.raises(PecError, match=message):
        municipio_query(query, ibge)


def test_the_module_reads_the_id_with_the_pec_options(localidades, tmp_path):
    bin_dir, conn = localidades
    args = {
        "ibge": "530010",
        "query": QUERY,
        "pg_bin_dir": bin_dir,
        "db_host": conn["host"],
        "db_port": conn["port"],
        "db_name": conn["name"],
        "db_user": conn["user"],
        "db_password": conn["password"],
        "pec_root": str(tmp_path / "no-pec"),
        "_ansible_check_mode": True,
    }
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, MODULE, str(path)], capture_output=True, text=True, env=env, check=False)
    out = json.loads(proc.stdout)
    assert out["changed"] is False and out["municipio_id"] == "5584" and out["ibge"] == "5300108"
    assert conn["password"] not in proc.stdout
