"""PgClient against a real PostgreSQL: queries, NULLs, and the error messages an operator sees."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient, sql_literal


def _conn(server, **over):
    conn = {k: server[k] for k in ("host", "port", "user", "password", "name")}
    conn.update(over)
    return conn


def test_query_rows_nulls_and_separators(pg_server):
    with PgClient(pg_server["bin_dir"], _conn(pg_server)) as client:
        rows = client.query("SELECT 'a|b', NULL::text, E'multi\\nline' UNION ALL SELECT 'x', 'y', 'z' ORDER BY 1")
        assert rows == [["a|b", None, "multi\nline"], ["x", "y", "z"]]
        assert client.scalar("SELECT 1 WHERE false") is None
        assert client.executed_queries[-1] == "SELECT 1 WHERE false"


def test_wrong_password_message(pg_server):
    with PgClient(pg_server["bin_dir"], _conn(pg_server, password="wrong")) as client:
        with pytest.raises(PecError, match="rejected user 'postgres': wrong password"):
            client.scalar("SELECT 1")


def test_database_down_message(pg_server):
    with PgClient(pg_server["bin_dir"], _conn(pg_server, port=1)) as client:
        with pytest.raises(PecError, match="not accepting connections.*Start the PEC database service"):
            client.scalar("SELECT 1")


def test_password_never_on_command_line_and_passfile_private(pg_server, monkeypatch):
    seen = []
    real_run = subprocess.run

    def spy(cmd, *args, check=False, **kwargs):
        seen.append((list(cmd), dict(kwargs.get("env") or {})))
        return real_run(cmd, *args, check=check, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    with PgClient(pg_server["bin_dir"], _conn(pg_server)) as client:
        assert oct(os.stat(client.passfile).st_mode & 0o777) == "0o600"
        client.scalar("SELECT 1")
        passfile = client.passfile
    assert not os.path.exists(passfile), "the PGPASSFILE must be removed after use"
    for cmd, env in seen:
        assert not any(pg_server["password"] in part for part in cmd)
        assert pg_server["password"] not in "".join(env.values())
        assert "PGPASSWORD" not in env


def test_sql_literal_quotes():
    assert sql_literal("O'Brien") == "'O''Brien'"
    assert sql_literal(None) == "NULL"


def _count_popen(monkeypatch):
    started = []
    real_popen = subprocess.Popen

    def spy(cmd, *args, **kwargs):
        started.append((list(cmd), dict(kwargs.get("env") or {})))
        return real_popen(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    return started


def test_session_serves_many_queries_with_one_psql_and_one_connection(pg_server, monkeypatch):
    sql = "SELECT 'a|b', NULL::text, E'multi\\nline' UNION ALL SELECT 'x', 'y', 'z' ORDER BY 1"
    with PgClient(pg_server["bin_dir"], _conn(pg_server)) as client:
        expected = client.query(sql)
    started = _count_popen(monkeypatch)
    with PgClient(pg_server["bin_dir"], _conn(pg_server), session=True) as client:
        pids = {client.scalar("SELECT pg_backend_pid()") for _attempt in range(3)}
        assert client.query(sql) == expected
        assert client.scalar("SELECT 1 WHERE false") is None
        assert client.query("SELECT 1; -- a trailing comment") == [["1"]]
        assert client.query("SELECT 2") == [["2"]]
        # an answer of many reads (about 1 MB) comes back whole, and the next one is still separate
        big = client.query("SELECT g, repeat('x', 13) FROM generate_series(1, 60000) g")
        assert len(big) == 60000 and big[0] == ["1", "x" * 13] and big[-1] == ["60000", "x" * 13]
        assert client.query("SELECT 3") == [["3"]]
        # a value that looks like the end of an answer does not end it
        assert client.scalar("SELECT E'__sesdf_esus_x_1__\\n'") == "__sesdf_esus_x_1__\n"
    assert len(pids) == 1, "every query of a session goes through the same server connection"
    assert len(started) == 1, "one psql for the whole session"
    assert client.executed_queries[-1] == "SELECT E'__sesdf_esus_x_1__\\n'"
    for cmd, env in started:
        assert not any(pg_server["password"] in part for part in cmd)
        assert pg_server["password"] not in "".join(env.values())


def test_session_failed_query_says_why_and_the_next_query_works(pg_server):
    with PgClient(pg_server["bin_dir"], _conn(pg_server), session=True) as client:
        first = client.scalar("SELECT pg_backend_pid()")
        with pytest.raises(PecError, match='relation "no_such_table" does not exist'):
            client.query("SELECT * FROM no_such_table")
        assert client.scalar("SELECT 41 + 1") == "42"
        assert client.scalar("SELECT pg_backend_pid()") != first, "a failed statement ends its psql, as one-shot"


def test_session_timeout_kills_psql_and_the_next_query_works(pg_server):
    with PgClient(pg_server["bin_dir"], _conn(pg_server), timeout=1, session=True) as client:
        with pytest.raises(PecError, match="did not answer within 1s"):
            client.query("SELECT pg_sleep(5)")
        assert client.scalar("SELECT 'ok'") == "ok"


def test_session_errors_read_like_one_shot(pg_server):
    for over, match in (
        ({"password": "wrong"}, "rejected user 'postgres': wrong password"),
        ({"port": 1}, "not accepting connections.*Start the PEC database service"),
    ):
        with PgClient(pg_server["bin_dir"], _conn(pg_server, **over), session=True) as client:
            with pytest.raises(PecError, match=match):
                client.scalar("SELECT 1")
