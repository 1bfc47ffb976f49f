#!/usr/bin/env bash
# What a migration run could change on the UBS, in one text (tests: check mode must not change it).
set -euo pipefail
q() { runuser -u postgres -- psql -h /var/run/postgresql -p 5433 -d esus -XAt -F '|' -c "$1"; }
echo "pec.config: $(md5sum < /etc/pec.config) $(stat -c %Y /etc/pec.config)"
q "SELECT 'config', md5(string_agg(co_config_sistema || '=' || coalesce(ds_texto, ''), ',' ORDER BY co_config_sistema)) FROM tb_config_sistema"
q "SELECT 'perfis', count(*), md5(string_agg(no_perfil, ',' ORDER BY co_seq_perfil)) FROM tb_perfil"
q "SELECT 'papel_perfil', count(*), md5(string_agg(co_ator_papel || ':' || co_perfil, ',' ORDER BY co_ator_papel, co_perfil)) FROM rl_ator_papel_perfil"
q "SELECT 'adm', (SELECT count(*) FROM tb_adm_geral), (SELECT count(*) FROM tb_adm_municipal)"
q "SELECT 'lotes', count(*), md5(string_agg(co_seq_lote_transp || ':' || dt_criacao, ',' ORDER BY co_seq_lote_transp)) FROM tb_lote_transp"
q "SELECT 'por_nodo', count(*), md5(string_agg(co_lote_transp_item_dbl || ':' || co_situacao_dbl, ',' ORDER BY co_lote_transp_item_dbl)) FROM tb_lote_transp_item_nodo"
q "SELECT 'sem_lote', count(*) FROM tb_dado_transp d WHERE NOT EXISTS (SELECT 1 FROM tb_lote_transp_item i WHERE i.co_dado_transp_dbl = d.co_seq_dado_transp)"
for d in /var/backups/esus /mnt/ctinf /mnt/gpma /var/lib/sesdf-esus /etc/ansible/facts.d /etc/cron.d /etc/sesdf-esus /var/cache/sesdf-esus; do
  echo "== $d"; find "$d" -printf '%p %s %T@\n' 2>/dev/null | sort || true
done
echo "nft: $(nft list tables 2>/dev/null | sort | tr '\n' ' ')"
echo "services: $(systemctl is-active e-SUS-PEC.service e-SUS-AB-PostgreSQL.service | tr '\n' ' ')"
