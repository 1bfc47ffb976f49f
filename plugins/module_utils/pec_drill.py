# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository's weekly duties on the cadence of the daily job: ``borg check --verify-data`` and the restore
drill (the newest archive of the repository restored into a scratch database, per-table row counts compared with
those its manifest recorded, the scratch dropped, the time measured). Results are the ``repo_check`` and
``restore_drill`` parts of the backup status.
"""

from __future__ import annotations

import datetime
import json
import os
import time

from ansible_collections.sesdf.esus.plugins.module_utils._borg import last_lines
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_iso
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
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


def restore_drill(repo, prefix, params, now, clock=time.monotonic):
    """``restore_drill`` status part: {result ok|failed, finished_at, duration_s, tables, archive, error}."""
    out = {"result": "failed", "finished_at": None, "duration_s": None, "tables": 0, "archive": None, "error": None}
    t0 = clock()
    try:
        archives = repo.archives(prefix)
        if not archives:
            raise PecError(f"the repository {repo.location} has no archive of this UBS yet: nothing to restore")
        name = archives[-1]["name"]
        out["archive"] = name
        comment = json.loads(repo.archive_info(name).get("comment") or "{}")
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
            finally:
                drop_database(client, scratch, maint)
        expected = comment.get("row_counts")
        mismatches = compare_counts(expected, set(comment.get("changed_during_dump") or []), restored)
        out.update(tables=len(restored), rows=sum(restored.values()), compared=expected is not None)
        if not restored:
            raise PecError(f"{name} restored no table")
        if mismatches:
            shown = ", ".join(f"{t}: {m['manifest']} -> {m['restored']}" for t, m in sorted(mismatches.items())[:5])
            raise PecError(f"the restored copy of {name} differs from its manifest ({shown})", mismatches=mismatches)
        out["result"] = "ok"
    except PecError as exc:
        out["error"] = exc.msg
    out["finished_at"] = iso(now)
    out["duration_s"] = round(clock() - t0, 3)
    return out
