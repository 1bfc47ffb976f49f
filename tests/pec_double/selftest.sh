#!/usr/bin/env bash
# shellcheck disable=SC2015  # "check && ok || fail" is deliberate: ok only echoes, so fail runs exactly when the check fails
# Self-test of the PEC e-SUS APS TEST DOUBLE. Runs INSIDE a lab container (root, systemd as PID 1), e.g.:
#   podman exec dbl-test bash /usr/src/pec-double/selftest.sh
# It installs, updates, refuses, breaks and reinstalls the PEC double: it wipes /opt/e-SUS and /etc/pec.config
# (never run it on a real server). Exits non-zero on the first failed check.
set -uo pipefail   # note: no 'cmd | grep -q' (SIGPIPE + pipefail = flaky); grep a here-string instead
INST=${PEC_INSTALLERS:-/srv/pec-installers}
PECBIN=/opt/e-SUS/database/postgresql-9.6.13-1-linux-x64/bin
CRED=/opt/e-SUS/webserver/config/credenciais.txt
WORK=$(mktemp -d /root/pec-selftest.XXXX)
trap 'rm -rf "$WORK"' EXIT
n=0
ok()   { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "FALHOU: $*" >&2; [ -f /opt/e-SUS/log/instalador.log ] && tail -15 /opt/e-SUS/log/instalador.log >&2; exit 1; }
check() { local msg=$1; shift; "$@" >/dev/null 2>&1 && ok "$msg" || fail "$msg"; }
jar() { java -jar "$INST/$1" "${@:2}"; }

# PGPASSFILE from credenciais.txt: block 1 (full access) or 2 (read-only); never a password on argv.
pgpass() {
  awk -v want="$1" '/^Usuário:/ {u=$2} /^Senha:/ {b++; if (b == want) print "127.0.0.1:5433:*:" u ":" $2}' "$CRED" >"$WORK/pgpass.$1"
  chmod 600 "$WORK/pgpass.$1"
}
q()    { PGPASSFILE=$WORK/pgpass.1 "$PECBIN/psql" -X -At -h 127.0.0.1 -p 5433 -U postgres -d esus -c "$1"; }
q_ro() { PGPASSFILE=$WORK/pgpass.2 "$PECBIN/psql" -X -At -h 127.0.0.1 -p 5433 -U esus_leitura -d esus -c "$1"; }
info() { curl -fsS --max-time 5 http://localhost:8080/api/public/info; }
wait_version() { # version
  for _ in $(seq 1 60); do grep -q "\"versao\": \"$1\"" <<<"$(info 2>/dev/null)" && return 0; sleep 1; done; return 1
}
wait_failed() {
  for _ in $(seq 1 60); do [ "$(systemctl show -p ActiveState --value e-SUS-PEC.service)" = failed ] && return 0; sleep 1; done; return 1
}
wipe() {
  systemctl disable --now e-SUS-PEC.service e-SUS-AB-PostgreSQL.service >/dev/null 2>&1
  systemctl reset-failed >/dev/null 2>&1
  rm -f /lib/systemd/system/e-SUS-PEC.service /lib/systemd/system/e-SUS-AB-PostgreSQL.service /etc/pec.config
  rm -rf /opt/e-SUS; systemctl daemon-reload
}

[ "$(id -u)" = 0 ] || fail "selftest precisa de root"
wipe
( cd "$INST" && sha256sum -c --quiet SHA256SUMS ) && ok "SHA256SUMS confere" || fail "SHA256SUMS"

# --- refusals before anything is installed -------------------------------------------------------------
grep -q -- "-console" <<<"$(jar eSUS-AB-PEC-4.2.8-Linux64.jar -help)" && ok "-help mostra o uso" || fail "-help"
jar eSUS-AB-PEC-4.2.8-Linux64.jar -naoexiste >/dev/null; [ $? = 2 ] && ok "opção desconhecida: código 2" || fail "opção desconhecida"
cp "$INST/eSUS-AB-PEC-4.2.8-Linux64.jar" /tmp/pec-selftest.jar && chmod 644 /tmp/pec-selftest.jar
out=$(cd /tmp && runuser -u nobody -- java -jar /tmp/pec-selftest.jar -console -continue 2>&1); rc=$?
rm -f /tmp/pec-selftest.jar
[ $rc = 1 ] && grep -q "privilégios de administrador" <<<"$out" && ok "usuário comum recusado" || fail "usuário comum: rc=$rc $out"
out=$(echo n | jar eSUS-AB-PEC-4.2.8-Linux64.jar -console 2>&1); rc=$?
[ $rc = 1 ] && grep -q "Deseja continuar" <<<"$out" && [ ! -e /opt/e-SUS/webserver/pec-bundle.jar ] && [ ! -e /lib/systemd/system/e-SUS-PEC.service ] \
  && ok "resposta 'n' ao prompt: cancelado, nada alterado" || fail "prompt: rc=$rc"
jar eSUS-AB-PEC-4.2.8-Linux64.jar -console </dev/null >/dev/null 2>&1; [ $? = 1 ] && [ ! -e /etc/pec.config ] && ok "EOF no prompt: cancelado" || fail "EOF no prompt"

# --- install 4.2.8 --------------------------------------------------------------------------------------
jar eSUS-AB-PEC-4.2.8-Linux64.jar -console -continue >"$WORK/install.out" 2>&1 || { cat "$WORK/install.out"; fail "instalação 4.2.8"; }
ok "instalação 4.2.8"
check "e-SUS-AB-PostgreSQL.service ativo" systemctl is-active e-SUS-AB-PostgreSQL.service
check "e-SUS-PEC.service ativo" systemctl is-active e-SUS-PEC.service
wait_version 4.2.8 && ok "/api/public/info: 4.2.8" || fail "/api/public/info 4.2.8: $(info 2>&1)"
grep -q "e-SUS APS - Prontuário Eletrônico do Cidadão" <<<"$(curl -fsS http://localhost:8080/esus/)" && ok "GET /esus/" || fail "GET /esus/"
[ "$(curl -s -o /dev/null -w '%{http_code}' http://localhost:8080/naoexiste)" = 404 ] && ok "404 fora das rotas" || fail "404"
[ "$(stat -c '%U:%G %a' $CRED)" = "root:root 600" ] && ok "credenciais.txt root:root 0600" || fail "credenciais.txt modo"
[ "$(stat -c '%a' /opt/e-SUS/webserver/config/application.properties)" = 644 ] && ok "application.properties 0644" || fail "application.properties"
[ "$(stat -c '%U %a' /opt/e-SUS/database/postgresql-9.6.13-1-linux-x64/data)" = "postgres 700" ] && ok "data/ postgres 0700" || fail "data/"
grep -q '"version": "4.2.8"' /etc/pec.config && ok "/etc/pec.config 4.2.8" || fail "/etc/pec.config"
pgpass 1; pgpass 2
[ "$(q "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'")" = 4.2.8 ] && ok "psql 127.0.0.1:5433 como postgres; VERSAOBANCODADOS 4.2.8" || fail "psql postgres"
[ "$(q "SELECT count(*) FROM tb_perfil")" = 26 ] && ok "26 perfis padrão" || fail "perfis"
[ "$(q_ro "SELECT count(*) FROM tb_adm_geral")" = 1 ] && ok "esus_leitura lê (1 administrador geral)" || fail "esus_leitura SELECT"
q_ro "INSERT INTO tb_config_sistema VALUES ('X', 'y')" >/dev/null 2>&1 && fail "esus_leitura escreveu" || ok "esus_leitura não escreve"
for f in /opt/e-SUS/log/instalador.log /opt/e-SUS/webserver/logs/pec.log "$WORK/install.out"; do
  while read -r pw; do grep -qF -- "$pw" "$f" && fail "senha em $f"; done < <(awk '/^Senha:/ {print $2}' $CRED)
done
ok "nenhuma senha nos logs"

# --- synthetic data ---------------------------------------------------------------------------------------
echo "SenhaAdmin-Selftest-1" >"$WORK/admin.pw"; chmod 600 "$WORK/admin.pw"
pec-double-generate --cnes 1234567 --ibge 530010 --ubs-name "UBS 1 Teste" --professionals 12 --patients 300 \
  --pending-records 40 --sent-lotes 3 --profile-mismatches 2 --seed 42 --admin-password-file "$WORK/admin.pw" \
  --xml-out "$WORK/cnes.xml" --zip-out "$WORK/XmlParaESUS31_530010.zip" >"$WORK/gen.json" || fail "gerador"
python3 - "$WORK/gen.json" <<'PY' || fail "JSON do gerador"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["cidadaos"] == 300 and s["atendimentos"] > 300, s
assert s["dadosTranspPendentes"] == 40 and s["lotesEnviados"] == 3 and s["dadosTranspEmLotes"] == 75, s
assert len(s["profileMismatches"]) == 2 and s["profissionais"] == 13, s
PY
ok "gerador: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["cidadaos"], "cidadãos,", s["atendimentos"], "atendimentos,", s["databaseSizeMb"], "MB")' "$WORK/gen.json")"
python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); assert r.tag == "ImportarXMLCNES" and len(r.findall("IDENTIFICACAO/PROFISSIONAIS/DADOS_PROFISSIONAIS")) == 12' "$WORK/cnes.xml" \
  && grep -q '\.xml$' <<<"$(unzip -Z1 "$WORK/XmlParaESUS31_530010.zip")" && ok "XML do CNES e zip" || fail "XML do CNES"
[ "$(q "SELECT count(*) FROM tb_auditoria_evento WHERE no_tabela = 'tb_lotacao'")" -ge 13 ] && ok "auditoria de tb_lotacao" || fail "auditoria"
before=$(q "SELECT (SELECT count(*) FROM tb_cidadao) || '/' || (SELECT count(*) FROM tb_atend)")

# --- update to 4.5.2 ---------------------------------------------------------------------------------------
jar eSUS-AB-PEC-4.5.2-Linux64.jar -console -continue -backup >"$WORK/upd.out" 2>&1 || { cat "$WORK/upd.out"; fail "atualização 4.5.2"; }
ok "atualização 4.2.8 -> 4.5.2"
wait_version 4.5.2 && ok "/api/public/info: 4.5.2" || fail "info 4.5.2"
[ "$(q "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'")" = 4.5.2 ] && ok "VERSAOBANCODADOS 4.5.2" || fail "versão do banco"
grep -q '"version": "4.5.2"' /etc/pec.config && ok "/etc/pec.config 4.5.2" || fail "pec.config 4.5.2"
[ "$(q "SELECT (SELECT count(*) FROM tb_cidadao) || '/' || (SELECT count(*) FROM tb_atend)")" = "$before" ] && ok "tb_cidadao/tb_atend inalteradas ($before)" || fail "contagens"
b=$(find /opt/e-SUS/backup -maxdepth 1 -name "*.backup" -print -quit 2>/dev/null)
[ -n "$b" ] && "$PECBIN/pg_restore" -f /dev/null "$b" && ok "backup -backup legível ($(basename "$b"))" || fail "backup"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST http://localhost:8080/api/cnes/530010)" = 404 ] && ok "4.5.2: POST /api/cnes 404" || fail "cnes 4.5.2"
out=$(jar eSUS-AB-PEC-4.5.2-Linux64.jar -console -continue 2>&1); rc=$?
[ $rc = 0 ] && grep -q "já está atualizado" <<<"$out" && ok "4.5.2 de novo: já está atualizado" || fail "já atualizado: $rc"
out=$(jar eSUS-AB-PEC-4.2.8-Linux64.jar -console -continue 2>&1); rc=$?
[ $rc = 1 ] && grep -q '"version": "4.5.2"' /etc/pec.config && systemctl is-active -q e-SUS-PEC.service && ok "4.2.8 sobre 4.5.2: recusado" || fail "downgrade: $rc $out"

# --- update to 4.5.5 (no CNES API), then to the 5.x line and its session CNES import ------------------------
jar eSUS-AB-PEC-4.5.5-Linux64.jar -console -continue >/dev/null 2>&1 && wait_version 4.5.5 && ok "atualização 4.5.2 -> 4.5.5" || fail "4.5.5"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST http://localhost:8080/api/cnes/530010)" = 404 ] && ok "4.5.5: POST /api/cnes 404" || fail "cnes 4.5.5"
jar eSUS-AB-PEC-5.5.28-Linux64.jar -console -continue >/dev/null 2>&1 && wait_version 5.5.28 && ok "atualização 4.5.5 -> 5.5.28" || fail "5.5.28"
[ "$(q "SELECT (SELECT count(*) FROM tb_cidadao) || '/' || (SELECT count(*) FROM tb_atend)")" = "$before" ] && ok "5.5.28: tb_cidadao/tb_atend inalteradas" || fail "contagens 5.5"
[ "$(q "SELECT data_type FROM information_schema.columns WHERE table_name = 'tb_usuario' AND column_name = 'st_bloqueado'")" = integer ] \
  && [ "$(q "SELECT count(*) FROM information_schema.columns WHERE table_name = 'tb_ator_papel' AND column_name = 'no_tipo_ator_papel'")" = 1 ] \
  && [ "$(q "SELECT co_localidade FROM tb_localidade WHERE co_ibge_dbl = '5300108'")" = 5565 ] && ok "5.5.28: esquema 5.5" || fail "esquema 5.5"
grep -q '"jreDirectory": "/opt/e-SUS/jre/current"' /etc/pec.config && ok "5.5.28: JRE em /opt/e-SUS/jre/current" || fail "jre 5.5"
B=http://127.0.0.1:8080; J=$WORK/cookies
xsrf() { awk '$6 == "XSRF-TOKEN" {t = $7} END {print t}' "$J"; }
gql() { curl -s -c "$J" -b "$J" -H "X-XSRF-TOKEN: $(xsrf)" -H 'Content-Type: application/json' -d "$1" "$B/api/graphql"; }
curl -s -c "$J" -b "$J" -o /dev/null "$B/"
[ "$(curl -s -o /dev/null -w '%{http_code}' -c "$J" -b "$J" -H 'Content-Type: application/json' -d '{"query": "{ x }"}' "$B/api/graphql")" = 403 ] \
  && ok "5.5.28: POST sem X-XSRF-TOKEN 403" || fail "xsrf"
login=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["adminLogin"])' "$WORK/gen.json")
body=$(python3 -c 'import json,sys; u, p = sys.argv[1], open(sys.argv[2]).read().strip(); print(json.dumps({"query": "mutation { login(input: {username: %s, password: %s, force: true}) { success } }" % (json.dumps(u), json.dumps(p))}))' "$login" "$WORK/admin.pw")
grep -q '"errors"' <<<"$(gql '{"query": "mutation { login(input: {username: \"00000000191\", password: \"errada\", force: true}) { success } }"}')" \
  && ok "5.5.28: login com senha errada recusado" || fail "login errado"
grep -q '"success": true' <<<"$(gql "$body")" && ok "5.5.28: login (mutation login, JSESSIONID)" || fail "login"
[ "$(curl -s -o /dev/null -w '%{http_code}' -c "$J" -b "$J" -H "X-XSRF-TOKEN: $(xsrf)" -F "file=@$WORK/XmlParaESUS31_530010.zip" "$B/api/cnes/530010")" = 400 ] \
  && ok "5.5.28: código IBGE no lugar do id interno do município: 400" || fail "cnes 400"
[ "$(curl -s -o /dev/null -w '%{http_code}' -c "$J" -b "$J" -H "X-XSRF-TOKEN: $(xsrf)" -F "file=@$WORK/XmlParaESUS31_530010.zip" "$B/api/cnes/5565")" = 200 ] \
  && ok "5.5.28: POST /api/cnes/5565 aceito" || fail "cnes 5.5"
for _ in $(seq 1 30); do grep -q CONCLUIDO <<<"$(gql '{"query": "query { importacoesCnes { content { id status } } }"}')" && break; sleep 1; done
[ "$(q 'SELECT count(*) FROM tb_cnes_importacao')" = 1 ] && ok "5.5.28: importação do CNES CONCLUIDO (importacoesCnes)" || fail "cnes assíncrono"

# --- broken 4.5.2 on a fresh 4.2.8 --------------------------------------------------------------------------
wipe
jar eSUS-AB-PEC-4.2.8-Linux64.jar -console -continue >/dev/null 2>&1 && wait_version 4.2.8 && ok "reinstalação 4.2.8" || fail "reinstalação"
pgpass 1
out=$(jar broken/eSUS-AB-PEC-4.5.2-Linux64.jar -console -continue 2>&1); rc=$?
[ $rc != 0 ] && grep -q "Erro ao atualizar o banco de dados" <<<"$out" && ok "4.5.2 quebrado: código $rc, 'Erro ao atualizar o banco de dados'" || fail "quebrado: $rc $out"
[ "$(q "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'")" = 4.3.2 ] \
  && [ "$(q "SELECT count(*) FROM information_schema.columns WHERE column_name = 'ds_protocolo_envio'")" = 1 ] \
  && [ "$(q "SELECT count(*) FROM information_schema.columns WHERE column_name = 'st_faleceu'")" = 0 ] \
  && ok "banco em estado parcial (4.3.2 + metade da 4.5.2)" || fail "estado parcial"
systemctl start e-SUS-PEC.service
wait_failed && grep -q "difere da versão da aplicação (4.5.2)" /opt/e-SUS/webserver/logs/pec.log && ok "aplicação não sobe: e-SUS-PEC.service failed" || fail "app deveria falhar"

wipe
echo "selftest: $n verificações OK"
