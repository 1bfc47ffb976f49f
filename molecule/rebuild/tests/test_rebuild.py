"""rebuild: the UBS whose server was lost (prepare.yml: three days of lote deliveries and backups, then its container
destroyed) rebuilt on a new, empty container from the backup host and the vault's file only (converge.yml). What the
technician and the manager rely on: every table as the last backup had it, the ledger continuing, the lost server's
key refused by the backup host, the report, a second run changing nothing; then bad input on a spare UBS whose server
holds a PEC with data, and a corrupt newest archive passed over (last: it damages the repository)."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess

import pytest
from ansible_module import run_module
from labhost import read_json, sh, sql

NEW, SPARE, BKP = "sesdf-rebuild-new", "sesdf-rebuild-spare", "sesdf-rebuild-bkp"
CNES = "0040004"
REPO_PATH = f"/srv/borg/ubs-{CNES}"
REPO = f"ssh://borg@{BKP}{REPO_PATH}"
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
LOST = os.path.join(EPHEMERAL, "perdido")
VAULT = os.path.join(EPHEMERAL, "vault", "sesdf-rebuild-old-borg.txt")
REPORTS = os.path.join(EPHEMERAL, "relatorios")
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
RECORD = "/etc/ansible/facts.d/sesdf_esus_rebuild.fact"
LEDGER = "/var/lib/sesdf-esus/lotes/ledger.json"
INBOX = "/var/lib/sesdf-esus/lotes/entrada"
DEST = "/srv/ncais/lotes"
LOTES = "/usr/local/sbin/sesdf-esus-lotes --config /etc/sesdf-esus/lotes-export.json"
TABLES = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    " ORDER BY 1"
)
# state the spare UBS must keep through every refused run: the collection's files, its key, its PEC's base
SPARE_FILES = (
    "{ find /etc/sesdf-esus /etc/ansible/facts.d /var/lib/sesdf-esus /root/.ssh /var/backups -type f 2>/dev/null; }"
    " | sort | xargs -r md5sum"
)

testinfra_hosts = [NEW]


def lost(name):
    with open(os.path.join(LOST, name), encoding="utf-8") as handle:
        return handle.read()


def passphrase():
    return next(line for line in lost_vault().splitlines() if line.strip() and not line.startswith("#")).strip()


def lost_vault():
    with open(VAULT, encoding="utf-8") as handle:
        return handle.read()


def as_borg(script):
    """A borg command on the backup host as its borg user, the passphrase on standard input."""
    return sh(BKP, f"runuser -u borg -- env BORG_PASSPHRASE_FD=0 {script}", stdin=passphrase() + "\n")


def fingerprints(target):
    """{table: 'count|md5'} of every table of the PEC's base, rows hashed in the order of their text."""
    out = {}
    for table in sql(target, TABLES).splitlines():
        row = sql(
            target,
            f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM \"{table}\" x",  # noqa: S608
        )
        out[table] = row
    return out


def playbook(path, *extra, check=False, limit=None):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(PROJECT, path)]
    cmd += [*(["--check"] if check else []), *(["--limit", limit] if limit else [])]
    for item in extra:
        cmd += ["-e", json.dumps(item)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=PROJECT)
    return proc.returncode, proc.stdout + proc.stderr


def spare_state():
    return sh(SPARE, SPARE_FILES), fingerprints(SPARE), sh(BKP, "md5sum ~borg/.ssh/authorized_keys")


@pytest.mark.nt("NT-inapta-4")
def test_every_table_of_the_rebuilt_server_hashes_as_the_last_backup():
    record = read_json(NEW, RECORD)["data"]
    manifest = json.loads(lost("manifest.json"))
    stamp = re.search(r"_(\d{8}T\d{6}Z)\.pgdump\.zst$", manifest["file"]).group(1)
    assert record["steps"]["fetch"]["archive"] == f"esus-{CNES}-diario-{stamp}", "the last backup, not an older one"
    assert record["steps"]["fetch"]["skipped"] == []
    proof = record["steps"]["restore"]["proof"]
    assert proof["source"] == "manifest" and proof["hashes_compared"] is True
    assert proof["hash_tables"] == len(manifest["row_hashes"]) and proof["hash_mismatches"] == []
    assert proof["count_mismatches"] == {}
    # the verifier's own look: every table of the lost server, row by row, but the installation link
    before = dict(line.split("|", 1) for line in lost("tabelas.txt").splitlines() if line)
    now = fingerprints(NEW)
    assert sorted(now) == sorted(before)
    assert sorted(t for t in before if before[t] != now[t]) == ["tb_config_sistema"]
    settings = sql(
        NEW,
        "SELECT co_config_sistema, ds_texto FROM tb_config_sistema WHERE co_config_sistema <> 'LINKINSTALACAO'"
        " ORDER BY 1",
    )
    assert settings == lost("config.txt").strip()
    link = sql(NEW, "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'LINKINSTALACAO'")
    assert link == "http://sesdf-rebuild-new:8080" and record["steps"]["link"]["supported"] is True
    pec = json.loads(sh(NEW, "cat /etc/pec.config"))
    assert pec["version"] == "5.5.28" == record["steps"]["install"]["version"]


def test_the_report_shows_the_new_server_with_its_history():
    rc, out = playbook("playbooks/report.yml", limit=f"{NEW},localhost")
    assert rc == 0, out
    pages = [p for p in glob.glob(os.path.join(REPORTS, "**", "*.html"), recursive=True) if NEW in open(p).read()]
    assert pages, "a page lists the new server"
    page = open(next(p for p in pages if "Servidor reconstruído em" in open(p).read())).read()
    record = read_json(NEW, RECORD)["data"]["last"]
    day = "/".join(reversed(record["backup_created_at"][:10].split("-")))
    assert f"a partir do backup de {day} ({record['archive']}); substituiu sesdf-rebuild-old" in page
    # its history came with it: the lotes record the report reads is the one the lost server produced
    pec = run_module(NEW, "sesdf.esus.pec_info", {"schema_trust": "double"})["pec"]
    lotes = pec["state"]["lotes"]
    assert lotes["present"] and not lotes.get("error") and lotes["produced_at"] < record["at"]
    assert pec["state"]["rebuild"]["data"]["rebuilds"][0]["old_host"] == "sesdf-rebuild-old"


def test_the_ledger_continues_the_next_weekly_export_sends_only_new_production():
    assert read_json(NEW, LEDGER) == json.loads(lost("ledger.json")), "the ledger where the lost server left it"
    delivered = dict(line.split(" ", 1) for line in sh(NEW, f"stat -c '%n %Y' {DEST}/*").splitlines())
    sql(
        NEW,
        "INSERT INTO tb_dado_transp (co_unico_dado_serializado, tp_dado_dbl, co_unidade_saude_dbl, dt_registro_dbl,"
        " ds_dado_dbl) SELECT n.u, d.tp_dado_dbl, d.co_unidade_saude_dbl, now(), overlay(d.ds_dado_dbl placing"
        " convert_to(n.u, 'UTF8') from position(convert_to(d.co_unico_dado_serializado, 'UTF8') in d.ds_dado_dbl)"
        " for 36) FROM (SELECT * FROM tb_dado_transp ORDER BY co_seq_dado_transp LIMIT 1) d,"
        " (SELECT gen_random_uuid()::text AS u FROM generate_series(1, 3)) n",
    )
    saved = json.loads(sh(NEW, f"pec-double-generate salvar-lote --destino {INBOX}"))["arquivo"]
    sh(NEW, f"touch -d '-1 hour' {saved}")
    out = sh(NEW, f"{LOTES}; echo rc=$?")
    summary = json.loads(out.rsplit("\n", 1)[0])
    assert out.endswith(("rc=0", "rc=3")), out
    after = dict(line.split(" ", 1) for line in sh(NEW, f"stat -c '%n %Y' {DEST}/*").splitlines())
    added = sorted(set(after) - set(delivered))
    stem = os.path.splitext(os.path.basename(saved))[0]
    assert added and all(stem in name for name in added), f"only the new lote arrived: {added}"
    assert {name: after[name] for name in delivered} == delivered, "no lote delivered before was sent again"
    newest = next(lote for lote in summary["lotes"] if lote["file"] == os.path.basename(saved))
    assert newest["confirmed"] and newest["records"] == 3
    old = json.loads(lost("ledger.json"))["files"]
    now = read_json(NEW, LEDGER)["files"]
    assert {k: now[k] for k in old} == old, "the lotes of the lost server are recorded as they were"


def test_the_backup_host_refuses_the_lost_servers_key_and_the_new_servers_backups_go_on():
    old_key = lost("chave-antiga.pub").split()[1]
    new_key = sh(NEW, "cat /root/.ssh/sesdf-esus-borg.pub").split()[1]
    lines = sh(BKP, f"grep ' sesdf-esus-borg-{CNES}$' ~borg/.ssh/authorized_keys").splitlines()
    assert len(lines) == 1 and new_key in lines[0] and old_key not in sh(BKP, "cat ~borg/.ssh/authorized_keys")
    assert lines[0].startswith(f'command="borg serve --restrict-to-repository {REPO_PATH} --append-only",restrict ')
    # the lost server's own key (kept by the lab) no longer opens the repository
    sh(SPARE, "umask 077; cat > /root/chave-antiga", stdin=lost("chave-antiga"))
    refused = sh(
        SPARE,
        f"BORG_RSH='ssh -i /root/chave-antiga -o BatchMode=yes -o StrictHostKeyChecking=no' BORG_PASSPHRASE=x "
        f"borg list {REPO} 2>&1; echo rc=$?; rm -f /root/chave-antiga",
    )
    assert "Permission denied" in refused and not refused.endswith("rc=0")
    record = read_json(NEW, RECORD)["data"]
    old_fp = sh(NEW, "ssh-keygen -l -f /dev/stdin", stdin=lost("chave-antiga.pub")).split()[1]
    assert record["steps"]["rekey"]["old_key"] == old_fp != record["steps"]["rekey"]["new_key"]
    # the new server's first backup went to the same repository, after the lost server's last one
    status = read_json(NEW, "/etc/ansible/facts.d/sesdf_esus_backup.fact")
    last_lost = json.loads(lost("backup.fact"))["offhost"]["last_archive"]
    assert status["offhost"]["state"] == "ok" and status["offhost"]["last_archive"] > last_lost
    names = as_borg(f"borg list --short {REPO_PATH}").split()
    assert last_lost in names and status["offhost"]["last_archive"] == names[-1]
    assert all(name.startswith(f"esus-{CNES}-") for name in names)


def test_a_second_rebuild_changes_nothing():
    rc, out = playbook("playbooks/rebuild.yml", {"rebuild_host": NEW})
    assert rc == 0, out
    assert re.search(rf"{NEW}\s*:\s*ok=\d+\s+changed=0\s", out), out[-3000:]


# ---------------------------------------------------------------------------------------------------- bad input
def test_a_target_whose_pec_holds_data_is_refused_saying_what_it_found_and_nothing_changes():
    before = spare_state()
    rc, out = playbook("playbooks/rebuild.yml", {"rebuild_host": SPARE, "rebuild_escrow_file": VAULT})
    assert rc != 0
    assert "já tem um PEC 5.5.28 com banco de" in out and "tb_dado_transp:" in out and "Nada foi alterado" in out
    assert spare_state() == before


def test_check_mode_says_what_it_would_do_and_changes_nothing():
    before = spare_state()
    extra = {"rebuild_host": SPARE, "rebuild_escrow_file": VAULT, "rebuild_replace": True, "sesdf_esus_cnes": CNES}
    rc, out = playbook("playbooks/rebuild.yml", extra, check=True)
    assert rc == 0, out
    names = as_borg(f"borg list --short {REPO_PATH}").split()
    assert f"buscar {names[-1]} (a mais nova de {len(names)} cópias desta UBS) em {REPO}" in out
    assert "instalar o PEC na versão que o backup registra (5.5.28)" in out
    assert spare_state() == before


def test_a_wrong_passphrase_is_refused_before_anything_changes():
    before = spare_state()
    extra = {"rebuild_host": SPARE, "rebuild_borg_passphrase": "nao-e-esta-senha", "rebuild_replace": True}
    rc, out = playbook("playbooks/rebuild.yml", dict(extra, sesdf_esus_cnes=CNES))
    assert rc != 0 and "a senha informada não abre o repositório " + REPO in out
    assert "nao-e-esta-senha" not in out and passphrase() not in out
    assert spare_state() == before


def test_a_repository_of_another_ubs_is_refused_before_anything_changes():
    before = spare_state()
    extra = {"rebuild_host": SPARE, "rebuild_escrow_file": VAULT, "rebuild_replace": True}
    rc, out = playbook("playbooks/rebuild.yml", extra)
    assert rc != 0
    assert "não tem nenhuma cópia desta UBS (esus-0050005-diario-*)" in out and f"outra UBS (esus-{CNES}-" in out
    assert spare_state() == before


def test_last_a_corrupt_newest_archive_is_passed_over_for_the_previous_one_and_said():
    names = as_borg(f"borg list --short {REPO_PATH}").split()
    newest, previous = names[-1], names[-2]
    chunks = {}
    for name in (newest, previous):
        as_borg(f"borg debug dump-archive {REPO_PATH}::{name} /tmp/{name}.json")
        items = json.loads(sh(BKP, f"cat /tmp/{name}.json; rm -f /tmp/{name}.json"))["_items"]
        chunks[name] = {c[0].lstrip("\x7f") for i in items if i["path"] == "esus.pgdump" for c in i["chunks"]}
    only_newest = sorted(chunks[newest] - chunks[previous])
    assert only_newest, "the newest dump has chunks of its own"
    as_borg(f"borg debug delete-obj {REPO_PATH} {only_newest[0]}")
    work = "/var/tmp/reconstrucao-prova"
    result = run_module(
        NEW,
        "sesdf.esus.pec_rebuild",
        {"action": "fetch", "source": "borg_ssh", "location": REPO, "cnes": CNES, "work_dir": work},
    )
    sh(NEW, f"rm -rf {work}")
    assert not result["failed"], result
    assert result["fetch"]["archive"] == previous
    assert [s["archive"] for s in result["fetch"]["skipped"]] == [newest]
    assert "não pôde ser lido inteiro" in result["fetch"]["skipped"][0]["error"]
    assert f"the newest, {newest}, could not be read whole" in result["msg"]
