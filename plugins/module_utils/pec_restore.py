# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restores of a backup archive, and the database helpers restores and the restore test share.

``run_restore`` restores over the live database (into a scratch database, then a swap) or into a named
target database; ``restore_test`` restores into a scratch database and compares row counts with the source.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import sha256_file
from ansible_collections.sesdf.esus.plugins.module_utils._runner import DEVNULL, Runner
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_archive import (
    SHA_SUFFIX,
    find_tool,
    read_sha_sidecar,
    sniff_format,
    stream_archive,
    tail_file,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient, classify_error, sql_literal
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import PecInstall

COUNT_SQL = (
    "SELECT n.nspname || '.' || c.relname, "
    "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), "
    "false, true, '')))[1]::text "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1"
)


def row_counts(client, dbname=None):
    return {name: int(count) for name, count in client.query(COUNT_SQL, dbname=dbname, record=False)}


def quote_ident(name):
    return '"' + str(name).replace('"', '""') + '"'


def database_exists(client, name, maintenance_db):
    return client.scalar(f"SELECT 1 FROM pg_database WHERE datname = {sql_literal(name)}", dbname=maintenance_db) == "1"


def create_database_like(client, name, like, maintenance_db):
    row = client.query(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
        f"WHERE datname = {sql_literal(like)}",
        dbname=maintenance_db,
    )
    opts = ""
    if row:
        enc, collate, ctype = row[0]
        opts = f" ENCODING {sql_literal(enc)} LC_COLLATE {sql_literal(collate)} LC_CTYPE {sql_literal(ctype)}"
    client.query(f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0{opts}", dbname=maintenance_db)


def drop_database(client, name, maintenance_db):
    client.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = {sql_literal(name)} AND pid <> pg_backend_pid()",
        dbname=maintenance_db,
    )
    client.query(f"DROP DATABASE IF EXISTS {quote_ident(name)}", dbname=maintenance_db)


def restore_into(client, path, fmt, target_db, zstd=None, single_transaction=True, extra_args=None):
    """pg_restore an archive into an existing, empty database. Raises PecError on failure."""
    pg_restore = client.tool("pg_restore")
    cmd = [pg_restore, "--exit-on-error", "-w", "-d", target_db, *list(extra_args or [])]
    if single_transaction:
        cmd.append("-1")
    work = tempfile.mkdtemp(prefix="sesdf-esus-restore-")
    try:
        if fmt == "zstd":
            read = stream_archive(path, fmt, zstd, cmd, client.env(), work, hash_it=False)
            ok, err = read["ok"], read["error"]
        else:
            errp = os.path.join(work, "err")
            with open(errp, "wb") as err_handle:
                proc = Runner().run(
                    [*cmd, "-Fc", path], stdout=DEVNULL, stderr=err_handle, env=client.env(), text=False, timeout=None
                )
            ok, err = proc.ok, tail_file(errp) if proc.rc is not None else proc.why()
        if not ok:
            raise PecError(
                f"pg_restore into {target_db} failed: {classify_error(err, dict(client.conn, name=target_db))}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def swap_in(client, target, build, previous, maintenance_db, keep_previous=False):
    """Put the database ``build`` in the place of ``target``: the live one (if any) loses its connections and is
    renamed ``previous``, ``build`` takes its name; ``previous`` is dropped unless ``keep_previous``. Returns the
    name kept aside, or None."""
    exists = database_exists(client, target, maintenance_db)
    if exists:
        client.query(f"ALTER DATABASE {quote_ident(target)} ALLOW_CONNECTIONS false", dbname=maintenance_db)
        client.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = {sql_literal(target)} AND pid <> pg_backend_pid()",
            dbname=maintenance_db,
        )
        client.query(f"ALTER DATABASE {quote_ident(target)} RENAME TO {quote_ident(previous)}", dbname=maintenance_db)
        client.query(f"ALTER DATABASE {quote_ident(previous)} ALLOW_CONNECTIONS true", dbname=maintenance_db)
    client.query(f"ALTER DATABASE {quote_ident(build)} RENAME TO {quote_ident(target)}", dbname=maintenance_db)
    if not exists:
        return None
    if keep_previous:
        return previous
    drop_database(client, previous, maintenance_db)
    return None


def restore_test(client, path, fmt, zstd, source_counts_before, source_counts_after, maintenance_db):
    """Restore into a scratch database, compare per-table row counts with the source, drop the scratch."""
    scratch = f"sesdf_verify_{os.getpid()}_{int(time.time())}"
    started = time.monotonic()
    create_database_like(client, scratch, client.conn["name"], maintenance_db)
    try:
        restore_into(client, path, fmt, scratch, zstd=zstd)
        restored = row_counts(client, dbname=scratch)
    finally:
        drop_database(client, scratch, maintenance_db)
    changed = sorted(t for t in source_counts_after if source_counts_before.get(t) != source_counts_after.get(t))
    mismatches = {}
    for table, count in source_counts_after.items():
        if table in changed:
            continue
        if restored.get(table) != count:
            mismatches[table] = {"source": count, "restored": restored.get(table)}
    for table in restored:
        if table not in source_counts_after:
            mismatches[table] = {"source": None, "restored": restored[table]}
    return {
        "ok": not mismatches and (bool(restored) or not source_counts_after),
        "tables": len(restored),
        "rows": sum(restored.values()),
        "mismatches": mismatches,
        "changed_during_dump": changed,
        "duration_s": round(time.monotonic() - started, 3),
    }


def run_restore(params, check_mode=False):
    """Restore a verified archive over the live database (scratch + swap) or into a named target database."""
    install = PecInstall(params)
    path = params["path"]
    fmt = sniff_format(path)
    zstd = find_tool("zstd", params.get("zstd_path")) if fmt == "zstd" else None
    expected = params.get("sha256") or read_sha_sidecar(path)
    if expected is None and not params.get("allow_unverified"):
        raise PecError(
            f"no checksum for {path} (no {path + SHA_SUFFIX} and no sha256 option); "
            "refusing to restore an archive whose integrity cannot be checked (allow_unverified: true overrides)"
        )
    if expected is not None:
        actual = sha256_file(path)
        if actual != expected.lower():
            raise PecError(
                f"checksum mismatch for {path}: sha256 is {actual}, expected {expected}; "
                "the archive is damaged: restore another backup. Nothing was changed"
            )
    bin_dir = install.pg_bin_dir()
    conn = install.connection()
    maint = params.get("maintenance_db") or "postgres"
    target = params.get("target_db") or conn["name"]
    swap = target == conn["name"]
    ts = utcnow().strftime("%Y%m%d%H%M%S")
    scratch = params.get("scratch_db") or f"{target}_new"
    previous = f"{target}_pre_restore_{ts}"
    result = {
        "path": path,
        "sha256": expected,
        "format": fmt,
        "target_db": target,
        "swapped": swap,
        "scratch_db": scratch if swap else None,
        "previous_db": None,
        "changed": False,
        "duration_s": None,
    }
    t0 = time.monotonic()
    with PgClient(bin_dir, conn, timeout=int(params.get("db_timeout") or 3600)) as client:
        exists = database_exists(client, target, maint)
        if not swap and exists and not params.get("replace_target"):
            raise PecError(f"target database {target} already exists; drop it or set replace_target: true")
        if swap and params.get("require_app_stopped", True):
            from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import service_state

            app = service_state(params.get("app_service") or "e-SUS-PEC.service")
            if app["active_state"] in ("active", "activating", "reloading"):
                raise PecError(
                    f"{app['name']} is running; stop it before restoring over {target} "
                    "(systemctl stop " + app["name"] + "). Nothing was changed"
                )
        if check_mode:
            result["changed"] = True
            result["would"] = (
                f"restore {path} into {scratch} then swap it with {target}"
                if swap
                else f"restore {path} into database {target}"
            )
            return result
        build = scratch if swap else target
        if database_exists(client, build, maint):
            drop_database(client, build, maint)
        if not swap and exists:
            drop_database(client, target, maint)
        create_database_like(
            client, build, conn["name"] if database_exists(client, conn["name"], maint) else "template0", maint
        )
        try:
            restore_into(
                client,
                path,
                fmt,
                build,
                zstd=zstd,
                single_transaction=params.get("single_transaction", True),
                extra_args=params.get("pg_restore_extra_args"),
            )
        except BaseException:
            drop_database(client, build, maint)
            raise
        result["row_counts"] = row_counts(client, dbname=build)
        if swap:
            result["previous_db"] = swap_in(client, target, build, previous, maint, params.get("keep_previous"))
    result["changed"] = True
    result["duration_s"] = round(time.monotonic() - t0, 3)
    return result
