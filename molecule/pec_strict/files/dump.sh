#!/bin/sh
# The schema of the PEC database and the rows of the tables no refused capability may write (tb_config_sistema and
# the transmission tables, per destination node), on stdout; pg_dump's per-run \restrict keys are left out.
set -eu
pg=$(find /opt/e-SUS/database -maxdepth 2 -name bin -path "*/postgresql-*" | head -1)
dump() { runuser -u postgres -- "$pg/pg_dump" -h /var/run/postgresql -p 5433 -d esus --no-owner "$@"; }
{
  dump --schema-only
  dump --data-only --table=tb_config_sistema --table='tb_lote_transp*' --table='tb_situacao_lote_transp*' \
    --table=tb_nodo --table=tb_dado_transp
} | grep -v '^\\\(un\)\{0,1\}restrict '
