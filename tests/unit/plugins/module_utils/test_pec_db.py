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
