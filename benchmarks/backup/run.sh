#!/usr/bin/env bash
# make bench-backup: verified backup (pg_dump -Fc -Z0 | zstd -T0, sha256, full-read verification) against a raw
# `pg_dump -Fc` (default settings) of the same generated database (>= 1 GB), in the same run, in one lab container;
# then the restore time of both. Prints a table. Then, on the same database, a seeded simulated week of clinic days,
# each day the daily job (`pec_backup.cli_main --now <day>`, method borg_mount into a repository directory in the
# container standing for the share): per day the full compressed copy against what the deduplicating repository
# adds, the job's CPU and wall time; then the newest day restored from the repository (pec_drill.restore_drill)
# against the local archive (pec_restore). Prints a second table. Not a test: it never fails on the figures.
# Env: BENCH_GB (target database size, default 1.1; the database must reach 1 GiB unless BENCH_GB is set below 1 or
# BENCH_ALLOW_SMALL=1, then a warning), BENCH_DAYS (simulated days after the initial full send, default 7),
# BENCH_KEEP=1 keeps the container.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=sesdf-bench-backup
IMAGE=${LAB_IMAGE:-localhost/sesdf-esus-lab:latest}
GB=${BENCH_GB:-1.1}
DAYS=${BENCH_DAYS:-7}
ALLOW_SMALL=${BENCH_ALLOW_SMALL:-0}
if [[ -n ${BENCH_GB:-} ]] && python3 -c "import sys; sys.exit(0 if float('$GB') < 1 else 1)"; then ALLOW_SMALL=1; fi
export CONTAINERS_CONF=${CONTAINERS_CONF:-$REPO/lab/containers.conf}

cleanup() { [[ ${BENCH_KEEP:-0} == 1 ]] || podman rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
podman rm -f "$NAME" >/dev/null 2>&1 || true
echo "load average at start: $(cut -d" " -f1-3 /proc/loadavg)" >&2
podman run -d --name "$NAME" --entrypoint sleep "$IMAGE" infinity >/dev/null
podman cp "$REPO/plugins/module_utils" "$NAME:/tmp/module_utils"
podman cp "$REPO/benchmarks/backup/week.py" "$NAME:/tmp/week.py"

podman exec -i -e GB="$GB" -e DAYS="$DAYS" -e ALLOW_SMALL="$ALLOW_SMALL" "$NAME" bash -s <<'INNER'
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
LIB=/opt/bench/lib/ansible_collections/sesdf/esus/plugins/module_utils
mkdir -p "$LIB" /bench && cp /tmp/module_utils/*.py "$LIB/"
chown postgres /bench
PW=bench-only-$RANDOM$RANDOM
echo "$PW" > /bench/pw && chown postgres /bench/pw
runuser -u postgres -- "$PGBIN/initdb" -D /bench/data -U postgres --auth=scram-sha-256 --pwfile=/bench/pw -E UTF8 --locale=C.UTF-8 >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D /bench/data -l /bench/pg.log -w -o "-p 5433 -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=4GB -c fsync=off -c autovacuum=off" start >/dev/null
umask 077; printf '*:*:*:postgres:%s\n' "$PW" > /root/.pgpass
export PGHOST=127.0.0.1 PGPORT=5433 PGUSER=postgres
psql -X -q -c "CREATE DATABASE esus" >/dev/null
rows=$(python3 -c "print(int(float('$GB') * 1024**3 / 330))")
echo "generating ~${GB} GB (${rows} patient-like rows + encounters) ..." >&2
psql -X -q -v ON_ERROR_STOP=1 -d esus <<SQL
CREATE UNLOGGED TABLE seed AS SELECT g FROM generate_series(1, $rows) g;
CREATE TABLE tb_cidadao (co_seq_cidadao bigint PRIMARY KEY, no_cidadao text, nu_cns text, dt_nascimento date,
  ds_logradouro text, ds_obs text, nu_telefone text, st_ativo boolean, dt_atualizacao timestamp);
INSERT INTO tb_cidadao SELECT g, 'Cidadao ' || md5(g::text), lpad((g::bigint * 7919 % 999999999999999)::text, 15, '0'),
  date '1930-01-01' + (g % 30000), 'Quadra ' || (g % 500) || ' Conjunto ' || chr(65 + g % 26) || ' Casa ' || (g % 90),
  md5((g * 3)::text) || ' ' || md5((g * 5)::text) || ' hipertensao diabetes acompanhamento ' || (g % 1000),
  '61' || lpad((g % 100000000)::text, 8, '0'), g % 11 <> 0, timestamp '2020-01-01' + (g % 100000) * interval '17 minutes'
FROM seed;
CREATE TABLE tb_atend (co_seq_atend bigint PRIMARY KEY, co_cidadao bigint, dt_atend timestamp, ds_cid text, qt_valor numeric);
INSERT INTO tb_atend SELECT g, 1 + (g * 31 % $rows), timestamp '2021-01-01' + g * interval '3 minutes',
  'CID ' || chr(65 + g % 26) || (g % 99), (g % 10000) / 7.0 FROM seed WHERE g % 2 = 0;
DROP TABLE seed;
VACUUM ANALYZE;
SQL
size=$(psql -X -At -d esus -c "SELECT pg_database_size('esus')")
echo "database size: $size bytes" >&2
if [ "$size" -lt 1073741824 ]; then
  if [ "$ALLOW_SMALL" = 1 ]; then echo "WARNING: database smaller than 1 GiB (development run, figures not comparable)" >&2
  else echo "database smaller than 1 GiB: raise BENCH_GB" >&2; exit 1; fi
fi
cat > /bench/config.json <<JSON
{"pec_root": "/nonexistent", "pec_config_path": "/nonexistent", "pg_bin_dir": "$PGBIN", "db_host": "127.0.0.1",
 "db_port": 5433, "db_name": "esus", "db_user": "postgres", "db_password": "$PW", "dest_dir": "/bench/verified",
 "label": "bench", "verify_level": "full_read", "status_path": ""}
JSON
sync
t() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); python3 -c "print(round($e - $s, 2))"; }
echo "raw pg_dump -Fc ..." >&2
raw_s=$(t pg_dump -Fc -f /bench/raw.dump esus)
echo "verified backup ..." >&2
ver_s=$(t env PYTHONPATH=/opt/bench/lib python3 -c "import sys; from ansible_collections.sesdf.esus.plugins.module_utils.pec_backup import cli_main; sys.exit(cli_main(['--config', '/bench/config.json']))" 2>/bench/verified.log)
archive=$(ls /bench/verified/*.pgdump.zst)
echo "restore from raw ..." >&2
psql -X -q -c "CREATE DATABASE r_raw TEMPLATE template0" >/dev/null
rr_s=$(t pg_restore --exit-on-error -1 -d r_raw /bench/raw.dump)
echo "restore from verified (pec_restore logic) ..." >&2
rv_s=$(t env PYTHONPATH=/opt/bench/lib python3 - <<PY
import json
from ansible_collections.sesdf.esus.plugins.module_utils.pec_restore import run_restore
p = json.load(open("/bench/config.json"))
p.update(path="$archive", target_db="r_ver")
run_restore(p)
PY
)
same=$(for db in r_raw r_ver; do psql -X -At -d $db -c "SELECT count(*), md5(string_agg(c::text, '' ORDER BY co_seq_cidadao)) FROM tb_cidadao c"; done | sort -u | wc -l)
raw_b=$(stat -c %s /bench/raw.dump); ver_b=$(stat -c %s "$archive")
python3 - "$size" "$raw_s" "$ver_s" "$rr_s" "$rv_s" "$raw_b" "$ver_b" "$same" "$(nproc)" <<'PY'
import sys
size, raw, ver, rr, rv, rawb, verb, same, cpus = sys.argv[1:]
size, raw, ver, rr, rv = int(size), float(raw), float(ver), float(rr), float(rv)
print(f"\nbench-backup: database {size / 1024**3:.2f} GiB, {cpus} CPU(s)\n")
print(f"| {'':44} | {'wall s':>8} | {'archive MiB':>11} | {'restore s':>9} |")
print(f"|{'-' * 46}|{'-' * 10}|{'-' * 13}|{'-' * 11}|")
print(f"| {'raw pg_dump -Fc (default gzip)':44} | {raw:8.1f} | {int(rawb) / 2**20:11.1f} | {rr:9.1f} |")
print(f"| {'verified: -Z0|zstd -T0, sha256, full read':44} | {ver:8.1f} | {int(verb) / 2**20:11.1f} | {rv:9.1f} |")
print(f"\nverified / raw backup time: {ver / raw:.2f}x (target <= 0.60x)")
print(f"verified / raw restore time: {rv / rr:.2f}x (target <= 1.00x)")
print(f"restored copies identical (tb_cidadao rows + ordered hash): {'yes' if same == '1' else 'NO'}")
PY
psql -X -q -c "DROP DATABASE r_raw" -c "DROP DATABASE r_ver" >/dev/null
rm -f /bench/raw.dump
echo "simulated days into a borg repository ..." >&2
PYTHONPATH=/opt/bench/lib ROWS=$rows PGBIN=$PGBIN python3 /tmp/week.py
INNER
