"""Ordered-row hashes: computed from the archive in the verification pass, recorded in the manifest, and compared by
the restore drill with the rows of the restored copy (real PostgreSQL, fixture in this directory's conftest)."""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import time

import pytest
from backup_helpers import params, published

from ansible_collections.sesdf.esus.plugins.module_utils import pec_archive as pa
from ansible_collections.sesdf.esus.plugins.module_utils import pec_backup as pb
from ansible_collections.sesdf.esus.plugins.module_utils import pec_drill
from ansible_collections.sesdf.esus.plugins.module_utils import pec_offhost as poff
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_restore import (
    create_database_like,
    drop_database,
    restore_into,
)

HDB = "esus_hashes"
# the row-count key of "Sch.Ema"."Weird.""Tab": schema Sch.Ema, table Weird."Tab
ODD_KEY = 'Sch.Ema.Weird."Tab'
TABLES = {
    "public.tb_float",
    "public.tb_when",
    "public.tb_text",
    "public.tb_bin",
    "public.tb_empty",
    "public.tb_dropped",
    ODD_KEY,
}
SCHEMA = r"""
CREATE TABLE tb_float (id int, r real, d double precision, n numeric);
INSERT INTO tb_float VALUES (1, 0.1, 0.1, 0.1), (2, 'NaN', 'Infinity', 'NaN'), (3, -1e-30, 1.7976931348623157e308,
  12345678901234567890.123456789), (4, 3.14159274, 2.718281828459045, NULL), (5, NULL, -0.0, 0);
CREATE TABLE tb_when (id int, tz timestamptz, ts timestamp, d date, i interval, t timetz);
INSERT INTO tb_when VALUES (1, '2026-01-01 02:30:00.123456-03', '1999-12-31 23:59:59.999999', '0044-03-15 BC',
  '1 year 2 mons -3 days 04:05:06.7', '10:00:00+05'), (2, 'infinity', '-infinity', 'infinity', NULL, NULL),
  (3, NULL, NULL, NULL, '-00:00:01', '23:59:59-11');
CREATE TABLE tb_text (id int, t text, v varchar(40), j jsonb, a text[]);
INSERT INTO tb_text VALUES (1, E'tab\there\nnewline\\backslash \\. end', E'\r\n', '{"k": "v\\n"}', '{"a\tb",NULL}'),
  (2, E'\\.', E'\\N', NULL, NULL), (3, NULL, '', '[]', '{}'), (4, 'Cidadão ção ü €', E'\x01\x7f', 'null', '{"a\"b"}');
CREATE TABLE tb_bin (id int, b bytea);
INSERT INTO tb_bin VALUES (1, '\x00ff5c0a09'), (2, NULL), (3, ''), (4, decode(repeat('00ff0a5c', 5000), 'hex'));
CREATE TABLE tb_empty (id int, t text);
CREATE TABLE tb_dropped (a int, gone text, b text);
INSERT INTO tb_dropped SELECT g, 'x', 'row ' || g FROM generate_series(1, 3000) g;
ALTER TABLE tb_dropped DROP COLUMN gone;
UPDATE tb_dropped SET b = b || ' updated' WHERE a % 7 = 0;
CREATE SCHEMA "Sch.Ema";
CREATE TABLE "Sch.Ema"."Weird.""Tab" ("Col A" int, "select" text);
INSERT INTO "Sch.Ema"."Weird.""Tab" VALUES (1, 'a'), (2, NULL);
"""


def _conn(server, name):
    return dict({k: server[k] for k in ("host", "port", "user", "password")}, name=name)


@pytest.fixture(scope="module")
def hsource(source):
    """A database with the types whose text form matters (floats, time zones, escapes, bytea, NULLs), an empty
    table, a dropped column, rows updated in place, and a table named with a quote, a dot and capitals."""
    with PgClient(source["bin_dir"], _conn(source, "postgres")) as client:
        client.query(f"DROP DATABASE IF EXISTS {HDB}")
        client.query(f"CREATE DATABASE {HDB}")
    with PgClient(source["bin_dir"], _conn(source, HDB)) as client:
        client.query(SCHEMA)
    return dict(source, name=HDB)


def _params(server, dest, **over):
    return params(server, dest, **over)


def _manifest(result):
    with open(result["manifest"], encoding="utf-8") as handle:
        return json.load(handle)


def _restored(server, archive, name):
    with PgClient(server["bin_dir"], _conn(server, server["name"])) as client:
        drop_database(client, name, "postgres")
        create_database_like(client, name, server["name"], "postgres")
        restore_into(client, archive, "zstd", name, zstd=pa.find_tool("zstd"))


def _hashes(server, dbname, tables, encoding="UTF8"):
    with PgClient(server["bin_dir"], _conn(server, dbname)) as client:
        return pec_drill.table_hashes(client, dbname, sorted(tables), encoding)


def test_the_hashes_of_a_restored_copy_equal_the_manifest_for_every_kind_of_value(hsource, tmp_path):
    result = pb.run_backup(_params(hsource, tmp_path))
    manifest = _manifest(result)
    assert set(manifest["row_hashes"]) == TABLES, "one hash per table, keyed like the row counts"
    assert manifest["row_hash_encoding"] == "UTF8"
    assert manifest["row_hashes"]["public.tb_empty"] == hashlib.sha256(b"").hexdigest()
    assert "row_hashes" not in result["verification"] and result["verification"]["row_hashes_tables"] == len(TABLES)
    _restored(hsource, result["path"], "esus_hashes_copy")
    assert _hashes(hsource, "esus_hashes_copy", TABLES) == manifest["row_hashes"]
    # and they are the hashes of the rows as COPY writes them (here: the live table, unchanged since the dump)
    with PgClient(hsource["bin_dir"], _conn(hsource, HDB)) as client:
        env = client.env()
        psql = [client.tool("psql"), "-X", "-q", *client.conn_args()]
        out = subprocess.run(
            [*psql, "-c", "SET extra_float_digits = 3", "-c", "COPY public.tb_float TO STDOUT"],
            env=env,
            capture_output=True,
            check=True,
        ).stdout
    assert manifest["row_hashes"]["public.tb_float"] == hashlib.sha256(out).hexdigest()


def test_a_row_changed_in_the_restored_copy_is_found_and_named(hsource, tmp_path):
    result = pb.run_backup(_params(hsource, tmp_path))
    expected = _manifest(result)["row_hashes"]
    _restored(hsource, result["path"], "esus_hashes_changed")
    with PgClient(hsource["bin_dir"], _conn(hsource, "esus_hashes_changed")) as client:
        # same row count, one value changed; and a byte of a bytea value
        client.query("UPDATE tb_text SET t = t || ' ' WHERE id = 4")
        client.query(r"""UPDATE "Sch.Ema"."Weird.""Tab" SET "select" = 'b' WHERE "Col A" = 1""")
    differ = pec_drill.compare_hashes(expected, _hashes(hsource, "esus_hashes_changed", TABLES))
    assert sorted(differ) == sorted(["public.tb_text", ODD_KEY])


class DirRepo:
    """A repository of one archive, extracted with zstd -dc into the drill's pg_restore; ``tamper`` runs SQL in the
    scratch database after the restore (a restore that changed a row)."""

    location = "/fake/repo"

    def __init__(self, archive, comment, tamper=None, server=None):
        self.archive, self.comment, self.tamper, self.server = archive, comment, tamper, server

    def archives(self, prefix):
        return [{"name": prefix + "diario-20260101T023000Z"}]

    def archive_info(self, name):
        return {"comment": json.dumps(self.comment)}

    def extract_to(self, name, consumer, consumer_env):
        with open(self.archive, "rb") as src:
            dec = subprocess.Popen([pa.find_tool("zstd"), "-dc"], stdin=src, stdout=subprocess.PIPE)
            proc = subprocess.run(consumer, stdin=dec.stdout, env=consumer_env, capture_output=True, check=False)
            dec.stdout.close()
            rc = dec.wait()
        if self.tamper:
            scratch = consumer[consumer.index("-d") + 1]
            with PgClient(self.server["bin_dir"], _conn(self.server, scratch)) as client:
                client.query(self.tamper)
        return rc, proc.returncode, proc.stderr.decode()


def _drill(hsource, tmp_path, comment, tamper=None):
    result = pb.run_backup(_params(hsource, tmp_path))
    manifest = _manifest(result)
    document = poff.borg_comment({"path": result["path"]}) if comment is None else comment(manifest)
    repo = DirRepo(result["path"], document, tamper, hsource)
    now = datetime.datetime.now(datetime.UTC)
    return pec_drill.restore_drill(repo, "esus-0020002-", _params(hsource, tmp_path), now)


def test_the_drill_compares_hashes_and_fails_naming_the_table_whose_rows_differ(hsource, tmp_path):
    ok = _drill(hsource, tmp_path, None)
    assert ok["result"] == "ok", ok
    assert ok["hashes_compared"] is True and ok["tables"] == len(TABLES)
    bad = _drill(hsource, tmp_path / "2", None, tamper="UPDATE tb_float SET d = d + 1 WHERE id = 1")
    assert bad["result"] == "failed" and bad["hash_mismatches"] == ["public.tb_float"]
    assert "ordered-row hashes differ in 1 table(s) (public.tb_float)" in bad["error"]
    assert "restore an older archive" in bad["error"]


def test_an_old_manifest_without_hashes_is_compared_by_counts_only_and_says_so(hsource, tmp_path):
    def old(manifest):
        return {"file": manifest["file"], "row_counts": None}

    drill = _drill(hsource, tmp_path, old, tamper="UPDATE tb_float SET d = d + 1 WHERE id = 1")
    assert drill["result"] == "ok" and drill["hashes_compared"] is False


def test_a_hashing_failure_is_a_verification_failure_and_nothing_is_published(hsource, tmp_path, monkeypatch):
    def broken(self, target, schema):
        raise PecError("cannot read the table name")

    monkeypatch.setattr(pa.RowHasher, "_copy_name", broken)
    with pytest.raises(PecError, match="ordered-row hashes of the archive could not be computed") as err:
        pb.run_backup(_params(hsource, tmp_path))
    assert "nothing was published" in err.value.msg
    assert published(tmp_path) == []


def _eventually(client, sql, want, seconds=10):
    """True once ``sql`` answers ``want`` (polled every 0.1 s for up to ``seconds``)."""
    deadline = time.monotonic() + seconds
    while client.scalar(sql) != want:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_hashing_stops_at_the_timeout_when_a_session_holds_a_lock_and_the_lock_is_released(hsource):
    """A COPY blocked behind another session's lock would hold the drill until the job is stopped: the hashing
    session gets the client's timeout, its psql is stopped and no backend of it is left on the server."""
    locker_sql = "BEGIN; LOCK TABLE tb_text IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;"
    with PgClient(hsource["bin_dir"], _conn(hsource, HDB)) as admin:
        cmd = [admin.tool("psql"), "-X", "-q", *admin.conn_args(HDB), "-c", locker_sql]
        locker = subprocess.Popen(cmd, env=admin.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            held = (
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE c.relname = 'tb_text' AND l.mode = 'AccessExclusiveLock' AND l.granted"
            )
            assert _eventually(admin, held, "1"), "the locking session did not get its lock"
            with PgClient(hsource["bin_dir"], _conn(hsource, HDB), timeout=2) as client:
                with pytest.raises(PecError, match=r"did not finish within 2s: psql was stopped") as err:
                    pec_drill.table_hashes(client, HDB, ["public.tb_text"])
            assert "pg_locks" in err.value.msg
            waiting = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%'"
                " AND pid <> pg_backend_pid()"
            )
            admin.query(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()"
            )
            assert _eventually(admin, waiting, "0"), "the stopped psql's COPY is still on the server"
        finally:
            locker.kill()
            locker.wait()
    assert _hashes(hsource, HDB, ["public.tb_text"])["public.tb_text"], "the table hashes once the lock is gone"


def test_the_hasher_gives_the_same_hashes_whatever_the_chunk_boundaries(hsource, tmp_path):
    result = pb.run_backup(_params(hsource, tmp_path))
    plain = subprocess.run(["zstd", "-dc", result["path"]], capture_output=True, check=True).stdout
    script = subprocess.run(
        [f"{hsource['bin_dir']}/pg_restore", "-f", "-"], input=plain, capture_output=True, check=True
    ).stdout
    expected = _manifest(result)["row_hashes"]
    for size in (1, 2, 3, 5, 4096):
        hasher = pa.RowHasher()
        for start in range(0, len(script), size):
            hasher.feed(script[start : start + size])
        assert hasher.finish() == expected, f"chunks of {size} bytes"
    cut = pa.RowHasher()
    cut.feed(script[: script.index(b"\n\\.\n", script.index(b"COPY public.tb_dropped"))])
    with pytest.raises(PecError, match="ended inside the data of table public.tb_dropped"):
        cut.finish()


def test_a_copy_line_outside_a_data_entry_is_not_a_table(tmp_path):
    """A function body may hold a line like a COPY: only a COPY under a TABLE DATA header starts a table."""
    script = (
        b"SET client_encoding = 'UTF8';\nCREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$\n"
        b"COPY public.x (a) FROM stdin;\n$$;\n\n--\n-- Data for Name: t; Type: TABLE DATA; Schema: s; Owner: o\n--\n\n"
        b"COPY t (a) FROM stdin;\n1\n\\.\n\n\n"
    )
    hasher = pa.RowHasher()
    hasher.feed(script)
    assert hasher.finish() == {"s.t": hashlib.sha256(b"1\n").hexdigest()}, "unqualified (pg_dump < 9.6.8): its schema"


def test_the_borg_comment_holds_hash_prefixes_or_says_they_were_left_out(tmp_path):
    archive = tmp_path / "esus_diario_20260101T023000Z.pgdump.zst"
    archive.write_bytes(b"x")

    def comment(tables):
        hashes = {f"public.tb_{n:04d}": hashlib.sha256(str(n).encode()).hexdigest() for n in range(tables)}
        (tmp_path / (archive.name + pa.MANIFEST_SUFFIX)).write_text(
            json.dumps({"row_hashes": hashes, "row_hash_encoding": "UTF8"})
        )
        return poff.borg_comment({"path": str(archive)}), hashes

    small, hashes = comment(3)
    assert small["row_hashes"] == {t: h[:32] for t, h in hashes.items()}
    big, _hashes = comment(5000)
    assert "row_hashes" not in big and "5000 tables" in big["row_hashes_omitted"]


def test_a_drill_whose_archive_carries_an_empty_set_of_hashes_says_it_compared_none(hsource, tmp_path):
    """What a 9.6 server's '-f -' verification produced: an empty set, which once read as 'hashes compared'."""

    def empty(manifest):
        return {"file": manifest["file"], "row_counts": manifest.get("row_counts"), "row_hashes": {}}

    drill = _drill(hsource, tmp_path, empty)
    assert drill["result"] == "ok" and drill["hashes_compared"] is False and drill["hashes_tables"] == 0
    assert "its verification hashed nothing" in drill["hashes_note"]
