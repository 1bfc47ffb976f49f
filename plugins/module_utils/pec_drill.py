# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository's weekly duties on the cadence of the daily job: ``borg check --verify-data`` and the restore
drill (the newest archive of the repository restored into a scratch database, per-table row counts and ordered-row
hashes compared with those its manifest recorded, the scratch dropped, the time measured). Results are the
``repo_check`` and ``restore_drill`` parts of the backup status.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import threading
import time

from ansible_collections.sesdf.esus.plugins.module_utils._borg import last_lines
from ansible_collections.sesdf.esus.plugins.module_utils._runner import PIPE
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_iso
from ansible_collections.sesdf.esus.plugins.module_utils.pec_archive import (
    PIPELINE,
    RowHasher,
    hash_stream,
    tail_file,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient, classify_error, sql_literal
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall
from ansible_collections.sesdf.esus.plugins.module_utils.pec_restore import (
    create_database_like,
    drop_database,
    row_counts,
)

NEVER = {"result": "never"}


def due(previous, stamp_key, every_days, now, hours=None):
    """True when ``every_days`` passed since ``previous[stamp_key]`` (or never ran) and, with ``hours``
    ([start, end) local hours), now is inside that window."""
    if int(every_days or 0) <= 0:
        return False
    if hours:
        start, end = int(hours[0]), int(hours[1])
        hour = now.astimezone().hour
        inside = start <= hour < end if start <= end else hour >= start or hour < end
        if not inside:
            return False
    last = parse_iso((previous or {}).get(stamp_key))
    return last is None or now - last >= datetime.timedelta(days=int(every_days)) - datetime.timedelta(hours=1)


def repo_check(repo, verify_data, now):
    """``repo_check`` status part: {result ok|failed, checked_at, error, verify_data}."""
    ok, message = repo.check(verify_data=verify_data)
    return {
        "result": "ok" if ok else "failed",
        "checked_at": iso(now),
        "error": None if ok else f"borg check found damage in {repo.location}: {message}",
        "verify_data": bool(verify_data),
    }


def compare_counts(expected, changed, restored):
    """Tables whose restored row count differs from the manifest's (tables changed during the dump skipped)."""
    mismatches = {}
    for table, count in (expected or {}).items():
        if table not in changed and restored.get(table) != count:
            mismatches[table] = {"manifest": count, "restored": restored.get(table)}
    for table in restored:
        if expected is not None and table not in expected and table not in changed:
            mismatches[table] = {"manifest": None, "restored": restored[table]}
    return mismatches


# the columns pg_dump copies (attnum order; generated columns, PostgreSQL 12+, are not copied)
COLUMNS_SQL = (
    "SELECT n.nspname || '.' || c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
    "coalesce(string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), '') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped{generated} "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' GROUP BY 1, 2"
)
# pg_dump's output settings (DateStyle, IntervalStyle, float digits, search_path); the encoding is the archive's
DUMP_SETTINGS = (
    "SET DateStyle = ISO;\nSET IntervalStyle = postgres;\nSET extra_float_digits = 3;\n"
    "SET search_path = pg_catalog;\nSET client_encoding = {encoding};\n"
)


def table_hashes(client, dbname, tables, encoding=None, timezone=None):
    """{schema.table: sha256 hex} of each table's rows in ``dbname`` (a database just restored by pg_restore -1,
    whose rows are in archive order): one psql session, ``COPY (SELECT <columns> FROM ONLY t ORDER BY ctid) TO
    STDOUT`` per table, each ended by a ``\\.`` line, into RowHasher. Tables absent there map to None. The whole
    session gets the client's timeout: a server that stops answering (a lock, a hung backend) kills ``psql``
    and raises, instead of holding the drill until the job is stopped. ``timezone``: the TimeZone of the session
    that made the dump (the manifest's ``db_timezone``), so a rebuilt server in another zone hashes alike."""
    version = int(client.scalar("SHOW server_version_num", dbname=dbname))
    generated = " AND a.attgenerated = ''" if version >= 120000 else ""
    found = {
        key: (qualified, cols)
        for key, qualified, cols in client.query(COLUMNS_SQL.format(generated=generated), dbname=dbname, record=False)
    }
    present = [t for t in tables if t in found]
    script = [DUMP_SETTINGS.format(encoding=sql_literal(encoding or "UTF8"))]
    if timezone:
        script.append(f"SET TimeZone = {sql_literal(timezone)};\n")
    for table in present:
        qualified, cols = found[table]
        script.append(f"COPY (SELECT {cols} FROM ONLY {qualified} ORDER BY ctid) TO STDOUT;\n\\echo '\\\\.'\n")
    work = tempfile.mkdtemp(prefix="sesdf-esus-drill-")
    try:
        sql_path = os.path.join(work, "hash.sql")
        with open(sql_path, "w", encoding="utf-8") as handle:
            handle.write("".join(script))
        err_path = os.path.join(work, "psql.err")
        cmd = [client.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *client.conn_args(dbname), "-f", sql_path]
        with open(err_path, "wb") as err:
            proc = PIPELINE.spawn(cmd, stdout=PIPE, stderr=err, env=client.env())
            expired = threading.Event()

            def expire():
                expired.set()
                proc.kill()

            watchdog = threading.Timer(client.timeout, expire)
            watchdog.start()
            try:
                hashes, error = hash_stream(proc.stdout, RowHasher(names=present))
            finally:
                watchdog.cancel()
                proc.stdout.close()
                rc = proc.wait()
        if expired.is_set():
            raise PecError(
                f"hashing the rows of {dbname} did not finish within {client.timeout}s: psql was "
                "stopped; check that the PEC database service is healthy and that no other session holds a lock on "
                f"a table of {dbname} (pg_locks), then run the drill again"
            )
        if rc != 0:
            raise PecError(f"hashing the rows of {dbname} failed: {classify_error(tail_file(err_path), client.conn)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if error:
        raise PecError(f"hashing the rows of {dbname} failed: {error}")
    return {t: hashes.get(t) for t in tables}


def compare_hashes(expected, restored):
    """Tables whose rows, restored, do not hash as the archive's did (a prefix of the sha256 hex is enough: the
    borg comment holds COMMENT_HASH_HEX digits)."""
    return {
        table: {"manifest": digest, "restored": restored.get(table)}
        for table, digest in (expected or {}).items()
        if not (restored.get(table) or "").startswith(digest or "-")
    }


def restore_drill(repo, prefix, params, now, clock=time.monotonic):
    """``restore_drill`` status part: {result ok|failed, finished_at, duration_s, tables, rows, compared,
    hashes_compared (true only when at least one table's rows were compared), hashes_tables, hashes_note (why not),
    archive, error}."""
    out = {"result": "failed", "finished_at": None, "duration_s": None, "tables": 0, "archive": None, "error": None}
    t0 = clock()
    try:
        archives = repo.archives(prefix)
        if not archives:
            raise PecError(f"the repository {repo.location} has no archive of this UBS yet: nothing to restore")
        name = archives[-1]["name"]
        out["archive"] = name
        comment = json.loads(repo.archive_info(name).get("comment") or "{}")
        expected_hashes = comment.get("row_hashes")
        install = PecInstall(params)
        conn = install.connection()
        maint = params.get("maintenance_db") or "postgres"
        scratch = f"sesdf_drill_{os.getpid()}_{int(time.time())}"
        with PgClient(install.pg_bin_dir(), conn, timeout=int(params.get("db_timeout") or 3600)) as client:
            create_database_like(client, scratch, conn["name"], maint)
            try:
                consumer = [client.tool("pg_restore"), "--exit-on-error", "-w", "-1", "-d", scratch]
                rc, restore_rc, err = repo.extract_to(name, consumer, client.env())
                if rc not in (0, 1) or restore_rc != 0:
                    raise PecError(
                        f"restoring {name} from {repo.location} failed (borg rc={rc}, pg_restore rc={restore_rc}): "
                        f"{last_lines(err)}"
                    )
                restored = row_counts(client, dbname=scratch)
                hashed = {}
                if expected_hashes:
                    hashed = table_hashes(
                        client,
                        scratch,
                        sorted(expected_hashes),
                        comment.get("row_hash_encoding"),
                        comment.get("db_timezone"),
                    )
            finally:
                drop_database(client, scratch, maint)
        expected = comment.get("row_counts")
        mismatches = compare_counts(expected, set(comment.get("changed_during_dump") or []), restored)
        out.update(
            tables=len(restored),
            rows=sum(restored.values()),
            compared=expected is not None,
            hashes_compared=bool(expected_hashes),
            hashes_tables=len(expected_hashes or {}),
        )
        if not expected_hashes:
            out["hashes_note"] = (
                "the archive carries no ordered-row hash"
                + (" (an empty set: its verification hashed nothing)" if expected_hashes == {} else "")
                + ": only the row counts were compared"
            )
        if not restored:
            raise PecError(f"{name} restored no table")
        if mismatches:
            shown = ", ".join(f"{t}: {m['manifest']} -> {m['restored']}" for t, m in sorted(mismatches.items())[:5])
            raise PecError(f"the restored copy of {name} differs from its manifest ({shown})", mismatches=mismatches)
        differ = compare_hashes(expected_hashes, hashed)
        if differ:
            out["hash_mismatches"] = sorted(differ)
            raise PecError(
                f"the restored copy of {name} does not hold the rows the archive held when it was verified: the "
                f"ordered-row hashes differ in {len(differ)} table(s) ({', '.join(sorted(differ)[:10])}); the "
                "repository or the restore changed them: run borg check --verify-data and restore an older archive",
                mismatches=differ,
            )
        out["result"] = "ok"
    except PecError as exc:
        out["error"] = exc.msg
    out["finished_at"] = iso(now)
    out["duration_s"] = round(clock() - t0, 3)
    return out
