"""bench-backup, second part (run inside the lab container by run.sh, after the first table).

A seeded simulated week on the generated database: day 0 is the initial full send, then each day the clinic's
changes (arithmetic on generate_series: the same rows every run) and the daily job exactly as the timer runs it
(``pec_backup.cli_main --config <job config> --now <day>``; method borg_mount into a repository directory standing
for the share). Per day: the full compressed copy (what mount/rsync push), what the repository added (borg's
deduplicated size, from the job's status, and the growth of the repository directory), the job's CPU and wall time,
and an estimate of the floor (the changed rows themselves). Then the newest day restored from the repository
(``pec_drill.restore_drill``) and from the local archive (``pec_restore.run_restore``), and both copies compared.
Prints a table; never fails on the figures.
"""
# ruff: noqa: S608 - the SQL is built from this file's integers and table names only

import base64
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import time

from ansible_collections.sesdf.esus.plugins.module_utils import pec_drill
from ansible_collections.sesdf.esus.plugins.module_utils.pec_offhost import borg_prefix, borg_repo
from ansible_collections.sesdf.esus.plugins.module_utils.pec_restore import run_restore

ROWS = int(os.environ["ROWS"])
DAYS = int(os.environ.get("DAYS") or 7)
PSQL = os.path.join(os.environ["PGBIN"], "psql")
INSERTS = 15000  # new encounter rows per clinic day
UPD_CIDADAO, UPD_ATEND = 400, 200  # scattered row updates per clinic day (600)
PCT_DAY = DAYS // 2 + 1 if DAYS >= 2 else None  # the day 1 % of the rows is updated (day 4 of a week)
START = datetime.datetime(2026, 1, 5, 5, 30, tzinfo=datetime.UTC)  # day 0, 02:30 in Brasília
ROOT = "/bench/borg"
REPO_DIR = "/bench/share/esus-repo"  # stands for the repository directory on IT's share
CONFIG = f"{ROOT}/backup.json"
JOB = (
    "import sys; from ansible_collections.sesdf.esus.plugins.module_utils.pec_backup import cli_main; "
    "sys.exit(cli_main(sys.argv[1:]))"
)
TARGET_RATIO, TARGET_RESTORE = 0.15, 1.3


def psql(sql, db="esus"):
    subprocess.run(
        [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db],
        input=sql,
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def query(sql, db="esus"):
    return subprocess.run(
        [PSQL, "-X", "-At", "-d", db, "-c", sql], capture_output=True, text=True, check=True
    ).stdout.strip()


def changed_rows(day):
    """(kind, [(table, WHERE of the rows changed that day)], SQL of the changes): deterministic."""
    base = ROWS + (day - 1) * INSERTS
    inserted = ("tb_atend", f"co_seq_atend BETWEEN {base + 1} AND {base + INSERTS}")
    sql = f"""
INSERT INTO tb_atend SELECT {base} + i, 1 + ({base} + i) * 31 % {ROWS},
  timestamp '2026-01-05 07:00' + {day} * interval '1 day' + i * interval '2 seconds',
  'CID ' || chr(65 + ({base} + i) % 26) || (({base} + i) % 99), (({base} + i) % 10000) / 7.0
FROM generate_series(1, {INSERTS}) i;
"""
    if day == PCT_DAY:
        cid = f"co_seq_cidadao % 100 = {day}"
        atd = f"co_seq_atend <= {ROWS} AND co_seq_atend / 2 % 100 = {day}"
        kind = "1 % rows"
    else:
        cid = (
            f"co_seq_cidadao IN (SELECT 1 + (i::bigint * 104729 + {day} * 15485863) % {ROWS} "
            f"FROM generate_series(1, {UPD_CIDADAO}) i)"
        )
        atd = (
            f"co_seq_atend IN (SELECT 2 * (1 + (i::bigint * 7919 + {day} * 1299709) % {ROWS // 2 - 1}) "
            f"FROM generate_series(1, {UPD_ATEND}) i)"
        )
        kind = "clinic"
    sql += f"""
UPDATE tb_cidadao SET nu_telefone = '61' || lpad(((co_seq_cidadao * {day + 7}) % 100000000)::text, 8, '0'),
  ds_logradouro = ds_logradouro || ' apto {day}',
  dt_atualizacao = timestamp '2026-01-05 12:00' + {day} * interval '1 day'
WHERE {cid};
UPDATE tb_atend SET ds_cid = 'CID Z' || {day}, qt_valor = qt_valor + {day} WHERE {atd};
"""
    return kind, [inserted, ("tb_cidadao", cid), ("tb_atend", atd)], sql


def simulate(day):
    """The day's changes, then the nightly VACUUM ANALYZE (autovacuum is off: the same layout every run). Returns
    (kind, rows changed, floor estimate: bytes of COPY of the changed rows, the same through zstd -3)."""
    kind, sets, sql = changed_rows(day)
    psql("BEGIN;" + sql + "COMMIT;\nVACUUM ANALYZE tb_cidadao, tb_atend;\n")
    count, copy = 0, b""
    for table, where in sets:
        count += int(query(f"SELECT count(*) FROM {table} WHERE {where}"))
        copy += subprocess.run(
            [PSQL, "-X", "-d", "esus", "-c", f"COPY (SELECT * FROM {table} WHERE {where}) TO STDOUT"],
            capture_output=True,
            check=True,
        ).stdout
    packed = subprocess.run(["zstd", "-3", "-q", "-c"], input=copy, capture_output=True, check=True).stdout
    return kind, count - INSERTS, len(copy), len(packed)


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _s, files in os.walk(path) for f in files)


def job_config():
    """The job config as roles/backup_schedule writes it (vars/main.yml __backup_schedule_params, the role's
    defaults), with this container's database and paths; weekly check and drill off inside the job (the drill is
    run on its own after the week, timed)."""
    base = json.load(open("/bench/config.json"))
    cfg = {
        k: base[k]
        for k in (
            "pec_root",
            "pec_config_path",
            "pg_bin_dir",
            "db_host",
            "db_port",
            "db_name",
            "db_user",
            "db_password",
        )
    }
    cfg.update(
        dest_dir="/bench/daily",
        label="diario",
        verify_level="full_read",
        compress_level=3,
        keep_daily=7,
        keep_weekly=4,
        keep_min=2,
        status_path=f"{ROOT}/state/sesdf_esus_backup.fact",
        offhost_enabled=True,
        offhost_method="borg_mount",
        offhost_dest=REPO_DIR,
        offhost_encrypt_recipient=None,
        offhost_require_mount=False,  # a plain directory stands for the share in the container
        offhost_ssh_options=[],
        cnes="0000001",
        manifest_row_counts=True,
        borg_chunker_params="buzhash,14,20,16,4095",
        borg_compression="zstd,3",
        borg_passphrase_file=f"{ROOT}/etc/borg.passphrase",
        borg_key_export=f"{ROOT}/etc/borg.key",
        borg_state_path=f"{ROOT}/state/borg-repo.json",
        borg_base_dir=f"{ROOT}/state/borg",
        borg_ssh_key=f"{ROOT}/etc/sesdf-esus-borg",
        borg_known_hosts=f"{ROOT}/etc/borg_known_hosts",
        borg_send_window_s=0,
        borg_check_every_days=0,
        borg_check_verify_data=True,
        borg_drill_every_days=0,
        borg_drill_hours=[0, 7],
        borg_keep_daily=7,
        borg_keep_weekly=4,
        borg_keep_monthly=12,
        borg_prune=True,
    )
    return cfg


def setup():
    os.umask(0o077)
    for sub in ("etc", "state", "log"):
        os.makedirs(f"{ROOT}/{sub}", mode=0o700, exist_ok=True)
    os.makedirs(os.path.dirname(REPO_DIR), mode=0o700, exist_ok=True)
    # as the role makes it: head -c 33 /dev/urandom | base64 into a root-only file; borg reads it via BORG_PASSCOMMAND
    with open(f"{ROOT}/etc/borg.passphrase", "wb") as handle:
        handle.write(base64.b64encode(os.urandom(33)))
    cfg = job_config()
    with open(CONFIG, "w") as handle:
        json.dump(cfg, handle, indent=1)
    return cfg


def run_job(day):
    """One daily run of the job in its own process; CPU = user+sys of it and its children (pg_dump, zstd, borg)."""
    now = (START + datetime.timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(f"{ROOT}/log/job-day{day}.log", "w") as log:
        rc = subprocess.run(
            [sys.executable, "-c", JOB, "--config", CONFIG, "--now", now], stdout=log, stderr=log, check=False
        ).returncode
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(f"{ROOT}/log/job-day{day}.log") as log:
        found = re.search(r"verified \w+, ([0-9.]+)s\)", log.read())
    return rc, cpu, wall, float(found.group(1)) if found else None


def same_rows(db):
    return [
        query(f"SELECT count(*), md5(string_agg(t::text, '' ORDER BY {key})) FROM {table} t", db)
        for table, key in (("tb_cidadao", "co_seq_cidadao"), ("tb_atend", "co_seq_atend"))
    ]


def mib(n):
    return f"{n / 2**20:.1f}"


def main():
    cfg = setup()
    rows = []
    for day in range(DAYS + 1):
        if day == 0:
            kind, changed, floor_raw, floor_zst = "initial full", None, None, None
        else:
            kind, changed, floor_raw, floor_zst = simulate(day)
        repo_before = dir_bytes(REPO_DIR) if os.path.isdir(REPO_DIR) else 0
        print(f"day {day} ({kind}): the daily job ...", file=sys.stderr)
        rc, cpu, wall, backup_s = run_job(day)
        status = json.load(open(cfg["status_path"]))
        off = status.get("offhost") or {}
        rows.append(
            {
                "day": day,
                "kind": kind,
                "changed": changed,
                "floor_raw": floor_raw,
                "floor_zst": floor_zst,
                "rc": rc,
                "cpu": cpu,
                "wall": wall,
                "backup_s": backup_s,
                "full": status.get("size_bytes") or 0,
                "sent": off.get("bytes_sent") or 0,
                "state": off.get("state"),
                "error": off.get("error"),
                "archives": off.get("sent") or [],
                "growth": dir_bytes(REPO_DIR) - repo_before,
                "path": status.get("path"),
            }
        )
        if rc != 0 or off.get("state") != "ok":
            print(
                f"  job rc={rc}, off-host {off.get('state')}: {off.get('error') or status.get('last_error')}",
                file=sys.stderr,
            )

    newest = rows[-1]
    print(f"restore of day {newest['day']}: local archive ...", file=sys.stderr)
    t0 = time.monotonic()
    run_restore(dict(cfg, path=newest["path"], target_db="r_local"))
    local_s = time.monotonic() - t0
    print(f"restore of day {newest['day']}: repository (restore drill) ...", file=sys.stderr)
    kept = []
    pec_drill.drop_database = lambda _client, name, _maint: kept.append(name)  # keep the drill's copy to compare
    now = START + datetime.timedelta(days=newest["day"], hours=1)
    t0 = time.monotonic()
    drill = pec_drill.restore_drill(borg_repo(cfg), borg_prefix(cfg), cfg, now)
    repo_s = time.monotonic() - t0
    identical = bool(kept) and same_rows("r_local") == same_rows(kept[0])

    size = int(query("SELECT pg_database_size('esus')"))
    pct = f"; day {PCT_DAY}: 1 % of the rows updated instead" if PCT_DAY else ""
    print(
        f"\nbench-backup, off-host copy: day 0 full send + {DAYS} simulated day(s) (each clinic day +{INSERTS} "
        f"encounter rows, {UPD_CIDADAO + UPD_ATEND} scattered updates{pct}); "
        f"database now {size / 1024**3:.2f} GiB"
    )
    print(
        "job = pec_backup.cli_main --now <day> (dump, verify, borg create into a borg_mount repository, prune); "
        "backup s = its dump + verify part (the job's log); floor = COPY of that day's changed rows, an estimate\n"
    )
    head = (
        "day",
        "kind",
        "rows upd",
        "floor est. MiB raw/zst",
        "(a) full MiB",
        "(b) repo MiB",
        "repo dir +MiB",
        "b/a",
        "job CPU s",
        "job wall s",
        "of it backup s",
        "b/a <= 15 %",
    )
    widths = [3, 12, 8, 22, 12, 12, 13, 6, 9, 10, 14, 11]
    print(
        "| "
        + " | ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths, strict=True)))
        + " |"
    )
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        ratio = r["sent"] / r["full"] if r["full"] else 0.0
        target = ("pass" if ratio <= TARGET_RATIO else "FAIL") if r["kind"] == "clinic" else "-"
        if r["rc"] != 0 or r["state"] != "ok":
            target = f"job rc={r['rc']} {r['state']}"
        floor = "-" if r["floor_raw"] is None else f"{mib(r['floor_raw'])} / {mib(r['floor_zst'])}"
        cells = (
            str(r["day"]),
            r["kind"],
            "-" if r["changed"] is None else str(r["changed"]),
            floor,
            mib(r["full"]),
            mib(r["sent"]),
            mib(r["growth"]),
            f"{ratio:.3f}",
            f"{r['cpu']:.1f}",
            f"{r['wall']:.1f}",
            "-" if r["backup_s"] is None else f"{r['backup_s']:.1f}",
            target,
        )
        print(
            "| "
            + " | ".join(
                c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )
    clinic = [r for r in rows if r["kind"] == "clinic"]
    if clinic:
        mean = sum(r["sent"] for r in clinic) / sum(r["full"] for r in clinic)
        print(
            f"\nclinic days: b/a {mean:.3f} overall, {sum(r['sent'] / r['full'] <= TARGET_RATIO for r in clinic)}/"
            f"{len(clinic)} at most {TARGET_RATIO:.0%} (target)"
        )
    total_sent, total_full = sum(r["sent"] for r in rows), sum(r["full"] for r in rows)
    print(
        f"whole run: repository {mib(total_sent)} MiB sent vs {mib(total_full)} MiB of full copies; repository "
        f"directory {mib(dir_bytes(REPO_DIR))} MiB"
    )
    ratio = repo_s / local_s
    label = f"restore of day {newest['day']} into a new database"
    print(f"\n| {label:74} | {'wall s':>8} |")
    print(f"|{'-' * 76}|{'-' * 10}|")
    print(f"| {'local archive (pec_restore: sha256, zstd -dc | pg_restore -1, counts)':74} | {local_s:8.1f} |")
    print(f"| {'repository (restore drill: borg extract --stdout | pg_restore -1, counts)':74} | {repo_s:8.1f} |")
    print(
        f"\nrepository / local restore time: {ratio:.2f}x (target <= {TARGET_RESTORE}x): "
        f"{'pass' if ratio <= TARGET_RESTORE else 'FAIL'}"
    )
    print(
        f"restore drill: {drill['result']} ({drill.get('tables')} tables, {drill.get('rows')} rows, compared with "
        f"the manifest: {drill.get('compared')}){' ' + drill['error'] if drill.get('error') else ''}"
    )
    print(
        f"both restored copies identical (tb_cidadao and tb_atend: rows + ordered hash): {'yes' if identical else 'NO'}"
    )


if __name__ == "__main__":
    main()
