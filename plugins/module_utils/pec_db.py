# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to the PEC's PostgreSQL with its own client tools (psql, pg_dump, pg_restore).

The password goes to the tools through a private PGPASSFILE (mode 0600 in a 0700 directory), never on a
command line or in the environment of the process list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

FIELD_SEP = "\x1f"
RECORD_SEP = "\x1e"

_DOWN_MARKERS = ("could not connect", "connection refused", "no such file or directory", "server closed the connection")
_AUTH_MARKERS = ("password authentication failed", "no password supplied", "authentication failed")


def _pgpass_escape(value):
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


def classify_error(stderr, conn):
    """Turn a client tool's stderr into a message that says what happened and what to do."""
    text = (stderr or "").strip()
    low = text.lower()
    where = f"{conn['host']}:{conn['port']}/{conn['name']}"
    if any(m in low for m in _AUTH_MARKERS):
        return (
            f"database {where} rejected user {conn['user']!r}: wrong password or user. "
            "Check spring.datasource.* in application.properties or the db_user/db_password options"
        )
    if any(m in low for m in _DOWN_MARKERS):
        return (
            f"database {where} is not accepting connections ({_first_line(text)}). "
            "Start the PEC database service (e-SUS-AB-PostgreSQL.service) and check its journal"
        )
    if "does not exist" in low and "database" in low:
        return f"database {conn['name']!r} does not exist on {conn['host']}:{conn['port']}: {_first_line(text)}"
    return f"database {where}: {_first_line(text) or 'client tool failed without a message'}"


def _first_line(text):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


class PgClient:
    """Runs the PEC's PostgreSQL client tools against one database. Use as a context manager."""

    def __init__(self, bin_dir, conn, timeout=60):
        self.bin_dir = bin_dir
        self.conn = dict(conn)
        self.timeout = timeout
        self._tmpdir = None
        self.executed_queries = []

    def __enter__(self):
        self._tmpdir = tempfile.mkdtemp(prefix="sesdf-esus-pg-")
        os.chmod(self._tmpdir, 0o700)
        passfile = os.path.join(self._tmpdir, "pgpass")
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(
                ":".join(_pgpass_escape(v) for v in ("*", "*", "*", self.conn["user"], self.conn.get("password") or ""))
                + "\n"
            )
        self.passfile = passfile
        return self

    def __exit__(self, *exc):
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def tool(self, name):
        path = os.path.join(self.bin_dir, name)
        if not os.access(path, os.X_OK):
            raise PecError(
                f"PostgreSQL client tool {name} not found or not executable in {self.bin_dir}; set pg_bin_dir"
            )
        return path

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            {
                "PGPASSFILE": self.passfile,
                "PGHOST": str(self.conn["host"]),
                "PGPORT": str(self.conn["port"]),
                "PGUSER": str(self.conn["user"]),
                "PGDATABASE": str(self.conn["name"]),
                "PGCONNECT_TIMEOUT": "10",
                "PGAPPNAME": "sesdf.esus",
                "LC_ALL": "C.UTF-8",
            }
        )
        return env

    def conn_args(self, dbname=None):
        """Connection flags for a client tool: no password, ever."""
        return ["-w", "-d", dbname or str(self.conn["name"])]

    def query(self, sql, dbname=None, record=True):
        """Run one SQL statement with psql; return rows as lists of strings (NULL as None)."""
        if record:
            self.executed_queries.append(sql)
        cmd = [
            self.tool("psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-P",
            "null=\\N",
            "-F",
            FIELD_SEP,
            "-R",
            RECORD_SEP,
            *self.conn_args(dbname),
            "-f",
            "-",
        ]
        proc = self._run(cmd, sql)
        out = proc.stdout
        if out.endswith("\n"):
            out = out[:-1]
        rows = []
        for record_text in out.split(RECORD_SEP):
            if record_text == "":
                continue
            rows.append([None if f == "\\N" else f for f in record_text.split(FIELD_SEP)])
        return rows

    def scalar(self, sql, dbname=None):
        rows = self.query(sql, dbname=dbname)
        if not rows:
            return None
        return rows[0][0]

    def _run(self, cmd, stdin_text):
        try:
            proc = subprocess.run(
                cmd,
                input=stdin_text,
                capture_output=True,
                text=True,
                env=self.env(),
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PecError(
                f"database {self.conn['host']}:{self.conn['port']} did not answer within {self.timeout}s; "
                "check that the PEC database service is healthy"
            ) from exc
        if proc.returncode != 0:
            raise PecError(classify_error(proc.stderr, self.conn), rc=proc.returncode)
        return proc


def sql_literal(value):
    """Quote a value as an SQL string literal (standard_conforming_strings on)."""
    if value is None:
        return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def database_version(client, key="VERSAOBANCODADOS"):
    """The PEC version the database records (``tb_config_sistema``, key unconfirmed for 4.5.2), or None."""
    return client.scalar("SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = " + sql_literal(key))


def database_size(client):
    """Bytes the current database takes on disk (``pg_database_size``), or None."""
    size = client.scalar("SELECT pg_database_size(current_database())")
    return int(size) if size is not None else None


def version_and_size(client, key="VERSAOBANCODADOS"):
    """(database version, database size in bytes): what pec_info and the upgrade preflight read."""
    return database_version(client, key), database_size(client)
