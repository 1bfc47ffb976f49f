# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to the PEC's PostgreSQL with its own client tools (psql, pg_dump, pg_restore).

The password goes to the tools through a private PGPASSFILE (mode 0600 in a 0700 directory), never on a
command line or in the environment of the process list.

A read-only caller that runs several queries (pec_info: the version, the size, the schema probe, the monthly
production) asks for ``session=True``: one psql process and one server connection serve them all, instead of a
psql start, a backend fork and an md5 authentication per query. A query's failure ends that psql (ON_ERROR_STOP),
exactly as a one-shot psql would; the next query starts a new one.
"""

from __future__ import annotations

import os
import re
import secrets
import selectors
import shutil
import tempfile
import time

from ansible_collections.sesdf.esus.plugins.module_utils._runner import PIPE, Runner, TimeoutExpired
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

    def __init__(self, bin_dir, conn, timeout=60, session=False):
        self.bin_dir = bin_dir
        self.conn = dict(conn)
        self.timeout = timeout
        self.session = session
        self._session = None
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
        self._close_session()
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
        cmd = self._psql_cmd(dbname)
        if self.session and dbname is None:
            out = self._session_query(cmd, sql)
        else:
            out = self._run(cmd, sql).stdout
        if out.endswith("\n"):
            out = out[:-1]
        rows = []
        for record_text in out.split(RECORD_SEP):
            if record_text == "":
                continue
            rows.append([None if f == "\\N" else f for f in record_text.split(FIELD_SEP)])
        return rows

    def _psql_cmd(self, dbname=None):
        return [
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

    def _session_query(self, cmd, sql):
        if self._session is None:
            self._session = _PsqlSession(cmd, self.env())
        try:
            return self._session.run(sql, self.timeout)
        except TimeoutExpired as exc:
            self._close_session(kill=True)
            raise PecError(self._timeout_msg()) from exc
        except _SessionEnded as exc:
            self._close_session()
            raise PecError(classify_error(exc.stderr, self.conn), rc=exc.rc) from None

    def _close_session(self, kill=False):
        if self._session is not None:
            self._session.close(kill=kill)
            self._session = None

    def _timeout_msg(self):
        return (
            f"database {self.conn['host']}:{self.conn['port']} did not answer within {self.timeout}s; "
            "check that the PEC database service is healthy"
        )

    def scalar(self, sql, dbname=None):
        rows = self.query(sql, dbname=dbname)
        if not rows:
            return None
        return rows[0][0]

    def _run(self, cmd, stdin_text):
        proc = Runner().run(cmd, stdin=stdin_text, env=self.env(), timeout=self.timeout)
        if proc.timed_out:
            raise PecError(self._timeout_msg())
        if proc.rc is None:
            raise PecError(proc.why())
        if proc.rc != 0:
            raise PecError(classify_error(proc.stderr, self.conn), rc=proc.rc)
        return proc


class _SessionEnded(Exception):
    """The session's psql exited (a failed statement under ON_ERROR_STOP, or the connection lost)."""

    def __init__(self, rc, stderr):
        super().__init__(stderr)
        self.rc = rc
        self.stderr = stderr


class _PsqlSession:
    """One psql process fed statement after statement on stdin; each answer ends at an ``\\echo`` of a marker
    that holds a random token, so no row can end an answer early."""

    def __init__(self, cmd, env):
        self.proc = Runner().spawn(cmd, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=env)
        self.token = secrets.token_hex(16)
        self.count = 0

    def run(self, sql, timeout):
        """The text psql printed for ``sql``; raises _SessionEnded or TimeoutExpired."""
        self.count += 1
        marker = f"__sesdf_esus_{self.token}_{self.count}__".encode()
        # the newline ends a trailing comment, the semicolon an unterminated statement (an empty one is ignored)
        pending = memoryview(sql.encode("utf-8") + b"\n;\n\\echo " + marker + b"\n")
        out, err = bytearray(), bytearray()
        scanned = 0  # out[:scanned] holds no marker start: each chunk is searched once, not the whole answer again
        deadline = time.monotonic() + timeout
        proc = self.proc
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
            sel.register(proc.stdout, selectors.EVENT_READ)
            sel.register(proc.stderr, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutExpired(proc.args, timeout)
                for key, _events in sel.select(left):
                    if key.fileobj is proc.stdin:
                        try:
                            sent = os.write(proc.stdin.fileno(), pending[:4096])
                        except BrokenPipeError:
                            sent = len(pending)  # psql is gone: its stdout's end says why
                        pending = pending[sent:]
                        if not pending:
                            sel.unregister(proc.stdin)
                        continue
                    data = os.read(key.fileobj.fileno(), 65536)
                    if key.fileobj is proc.stderr:
                        if data:
                            err += data
                        else:
                            sel.unregister(proc.stderr)
                        continue
                    if not data:
                        try:
                            rc = proc.wait(max(deadline - time.monotonic(), 0.1))
                        except TimeoutExpired:
                            proc.kill()
                            rc = proc.wait()
                        err += proc.stderr.read() or b""
                        raise _SessionEnded(rc, err.decode("utf-8", "replace"))
                    out += data
                    if out.startswith(marker + b"\n"):  # an answer without rows
                        return ""
                    end = out.find(b"\n" + marker + b"\n", scanned)
                    if end != -1:
                        return bytes(out[: end + 1]).decode("utf-8")
                    scanned = max(len(out) - len(marker) - 1, 0)

    def close(self, kill=False):
        """End psql: at the end of its input, or at once (``kill``: a statement that outran its time)."""
        if kill:
            self.proc.kill()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


def sql_literal(value):
    """Quote a value as an SQL string literal (standard_conforming_strings on)."""
    if value is None:
        return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def single_select(sql):
    """``sql`` without its trailing semicolons when it is a single SELECT (or WITH ... SELECT), else None: what IT
    writes from a survey into the inventory (the node query, the município query) and the collection runs read-only."""
    text = (sql or "").strip().rstrip(";").strip()
    if not text or ";" in text or not re.match(r"(?is)^(select|with)\b", text):
        return None
    return text


def query_read_only(client, sql):
    """Rows of a :func:`single_select` run in a READ ONLY transaction that is rolled back (not recorded in
    ``executed_queries``): a statement that would write fails, and nothing it did stays."""
    text = single_select(sql)
    if text is None:
        raise PecError("a read-only query must be a single SELECT (or WITH ... SELECT)")
    # the newline ends a trailing comment before the semicolon
    return client.query("BEGIN TRANSACTION READ ONLY;\n" + text + "\n;\nROLLBACK;", record=False)


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


def table_columns(client, tables):
    """{table: {column: data_type}} of ``tables`` in the current schema, read once from information_schema
    (read-only); a table the database lacks is absent from the answer."""
    tables = sorted(set(tables))
    if not tables:
        return {}
    rows = client.query(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name IN ("
        + ", ".join(sql_literal(t) for t in tables)
        + ") ORDER BY 1, 2"
    )
    out = {}
    for table, column, data_type in rows:
        out.setdefault(table, {})[column] = data_type
    return out


def missing_schema(client, needed):
    """What of ``needed`` ({table: [columns]}) the live schema lacks, as 'table.column' strings (read-only)."""
    have = table_columns(client, needed)
    return [f"{t}.{c}" for t, cols in needed.items() for c in cols if c not in have.get(t, {})]
