"""A UBS migrated by playbooks/migrate.yml: what GPMA, IT (CTINF), NTINF and an auditor would check.

Prepare left a 4.2.8 UBS with pending production, a break-glass admin, a snapshot of the patient data and the
state before the check run; converge ran the flow once with migrate_stop_after=lotes, then (after leaving what a run
killed in the backup step leaves: the PEC stopped with the collection's marker, a partial copy in the share) with
migrate_stop_after=backup, then to the end.
State is read with `podman exec` (fast); one psql query per check.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess

import labhost
from ansible_module import run_module

HOST = "sesdf-migrate-ubs"
testinfra_hosts = [HOST]  # the tests below read the host through podman exec
VIEW = "Visualização de prontuário"
BREAK_GLASS = "00000000272"
SHARE = "/mnt/ctinf/migracao"
GPMA = "/mnt/gpma/lotes"
RECORD = "/etc/ansible/facts.d/sesdf_esus_migration.fact"
LEDGER = "/var/lib/sesdf-esus/lotes/ledger.json"
VERSION_SQL = "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'VERSAOBANCODADOS'"
NOTICES = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "avisos-migracao")


sh = functools.partial(labhost.sh, HOST)


def sql(query, db="esus"):
    return labhost.sql(HOST, query, db)


def read_json(path):
    return labhost.read_json(HOST, path)


def snapshot_now(db="esus"):
    """The prepare snapshot's lines and the same recomputed now, on the columns that existed in 4.2.8."""
    return labhost.patient_data_now(HOST, "/root/migrate-snapshot.txt", db)


def test_check_mode_before_converge_changed_nothing():
    assert sh("cat /root/migrate-state-before-converge.txt") == sh("cat /root/migrate-state-prepare.txt")


def test_every_lotacao_has_only_the_view_only_profile_and_only_break_glass_administers():
    rows = sql(
        "SELECT u.ds_login, coalesce(string_agg(pf.no_perfil, ',' ORDER BY pf.no_perfil), '-') FROM tb_lotacao l"
        " JOIN tb_ator_papel ap ON ap.co_seq_ator_papel = l.co_ator_papel JOIN tb_prof p ON p.co_seq_prof = ap.co_prof"
        " JOIN tb_usuario u ON u.co_seq_usuario = p.co_usuario"
        " LEFT JOIN rl_ator_papel_perfil r ON r.co_ator_papel = l.co_ator_papel"
        " LEFT JOIN tb_perfil pf ON pf.co_seq_perfil = r.co_perfil GROUP BY l.co_ator_papel, u.ds_login"
        " UNION ALL SELECT 'ADMIN:' || u.ds_login, '' FROM tb_adm_geral g"
        " JOIN tb_ator_papel ap ON ap.co_seq_ator_papel = g.co_ator_papel JOIN tb_prof p ON p.co_seq_prof = ap.co_prof"
        " JOIN tb_usuario u ON u.co_seq_usuario = p.co_usuario"
        " UNION ALL SELECT 'MUNICIPAL', count(*)::text FROM tb_adm_municipal",
    ).splitlines()
    lotacoes = [r.split("|") for r in rows if not r.startswith(("ADMIN:", "MUNICIPAL"))]
    assert len(lotacoes) >= 8
    assert {profiles for _lotacao, profiles in lotacoes} == {VIEW}, lotacoes
    assert [r for r in rows if r.startswith("ADMIN:")] == [f"ADMIN:{BREAK_GLASS}|"]
    assert "MUNICIPAL|0" in rows


def test_patient_data_unchanged():
    before, now = snapshot_now()
    assert len(before) == 2 and int(before[0].split("|")[2]) >= 150
    assert now == before


def test_pec_runs_452_in_config_database_and_http():
    config = read_json("/etc/pec.config")["version"]
    database = sql(VERSION_SQL)
    http = json.loads(sh("curl -fsS --retry 5 --retry-connrefused http://127.0.0.1:8080/api/public/info"))["versao"]
    assert (config, database, http) == ("4.5.2", "4.5.2", "4.5.2")


def test_every_pending_lote_exported_and_confirmed_at_gpma():
    pending_rows, lotes_before = (int(x) for x in sh("cat /root/migrate-pending.txt").split("|"))
    assert pending_rows > 0
    state = sql(
        "SELECT (SELECT count(*) FROM tb_dado_transp WHERE co_lote_transp IS NULL),"
        " (SELECT count(*) FROM tb_lote_transp l JOIN tb_situacao_lote_transp s"
        "  ON s.co_situacao = l.co_situacao WHERE s.no_situacao <> 'ENVIADO'),"
        " (SELECT count(*) FROM tb_lote_transp)"
    )
    unbatched, not_sent, lotes_now = (int(x) for x in state.split("|"))
    assert (unbatched, not_sent) == (0, 0)
    ledger = read_json(LEDGER)["lotes"]
    assert len(ledger) == lotes_now - lotes_before == 1, "one lote for the pending rows, made once"
    at_dest = dict(line.split("  ")[::-1] for line in sh(f"cd {GPMA} && sha256sum *.zip").splitlines())
    for entry in ledger.values():
        assert entry.get("confirmed_at"), entry
        assert at_dest[entry["file"]] == entry["sha256"]
    assert sum(e["records"] for e in ledger.values()) == pending_rows
    assert len(at_dest) == len(ledger), "nothing sent twice"


def test_backup_in_the_share_verifies_and_restores_equal():
    record = read_json(RECORD)["steps"]["backup"]
    files = sh(f"ls -1A {SHARE}").split()
    archives = [f for f in files if f.endswith(".pgdump.zst")]
    assert archives == [record["file"]], files
    assert sorted(files) == sorted([record["file"], record["file"] + ".sha256"]), "only complete files in the share"
    share_path = f"{SHARE}/{record['file']}"
    assert sh(f"sha256sum {share_path}").split()[0] == record["sha256"]
    assert int(sh(f"stat -c %s {share_path}")) == int(record["size_bytes"])
    result = run_module(
        HOST,
        "sesdf.esus.pec_restore",
        {"path": share_path, "sha256": record["sha256"], "target_db": "esus_verifica", "replace_target": True},
    )
    assert not result["failed"], result.get("msg")
    try:
        before, restored = snapshot_now("esus_verifica")
        assert restored == before
        version = sql(VERSION_SQL, "esus_verifica")
        assert version == "4.5.2"
    finally:
        sql("DROP DATABASE IF EXISTS esus_verifica", "postgres")


def test_interrupted_run_resumed_without_repeating_a_step():
    interrupted = read_json("/root/migrate-record-interrupted.json")
    final = read_json(RECORD)
    assert sorted(interrupted["steps"]) == ["lotes", "upgrade"]
    assert not interrupted.get("migrated")
    assert sorted(final["steps"]) == ["backup", "decommission", "lotes", "upgrade"]
    for step in ("upgrade", "lotes"):
        assert final["steps"][step]["at"] == interrupted["steps"][step]["at"], f"step {step} ran again"
    assert read_json(LEDGER) == read_json("/root/migrate-ledger-interrupted.json"), "a lote was made or sent again"
    local = sh("ls -1 /var/backups/esus").split()
    assert len([f for f in local if "_migracao_" in f and f.endswith(".pgdump.zst")]) == 1, local
    assert len([f for f in local if "_pre-upgrade-" in f and f.endswith(".pgdump.zst")]) == 1, local


def test_consultation_mode_record_and_firewall():
    record = read_json(RECORD)
    assert record["migrated"] is True and record["role"] == "consultation" and record["version"] == "4.5.2"
    assert len(record["profile_snapshots"]) == 1, "one snapshot: the later runs changed nothing"
    assert sql("SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'") == "false"
    assert "tcp dport 8080 accept" in sh("nft list table inet sesdf_consultation")
    assert sh("systemctl is-active e-SUS-PEC.service") == "active"


def test_migration_notice_carries_the_right_figures():
    record = read_json(RECORD)
    backup = record["steps"]["backup"]
    share_path = f"{SHARE}/{backup['file']}"
    share_sha = sh(f"sha256sum {share_path}").split()[0]
    share_size = sh(f"stat -c %s {share_path}")
    moved = sql(
        "SELECT count(DISTINCT ap.co_prof) FROM tb_lotacao l"
        " JOIN tb_ator_papel ap ON ap.co_seq_ator_papel = l.co_ator_papel"
    )
    lotes = len(read_json(LEDGER)["lotes"])
    assert record["switched_off"]["transmission_off"] == {"TRANSMISSAO_AUTOMATICA": "false"}
    date = record["date"][:10]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)
    for ext in ("md", "html", "pdf"):
        path = os.path.join(NOTICES, f"aviso-migracao-0030001-{date}.{ext}")
        if ext == "pdf":  # the PDF's text as a reader copies it (pdftotext: poppler-utils, installed by make deps)
            text = subprocess.run(
                ["pdftotext", "-layout", path, "-"], capture_output=True, text=True, check=True
            ).stdout
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        flat = re.sub(r"\s+", " ", re.sub(r"<[^>]+>|\*\*|`", "", text))
        assert "Aviso de migração" in flat and "somente para" in flat
        assert "UBS 3 Teste Migração" in flat
        assert re.search(r"CNES\s*\|?\s*0030001", flat)
        assert re.search(r"Região de Saúde\s*\|?\s*norte", flat)
        assert date in flat
        assert re.search(r"Versão do e-SUS APS PEC no servidor local\s*\|?\s*4\.5\.2", flat)
        assert backup["file"] in flat and share_sha in flat
        assert f"({share_size} bytes)" in flat
        assert re.search(rf"Lotes confirmados no destino:\s*{lotes}\b", flat)
        assert re.search(rf"\(somente visualização\):\s*{moved}\b", flat), flat
        # the switch the run wrote is stated as done, from the record; nothing else is claimed
        assert "Transmissão automática desligada: gravado pela coleção no banco do PEC" in flat
        assert "(TRANSMISSAO_AUTOMATICA = false)" in flat
        # personal data: the break-glass administrator is named by its role, never by its login (a CPF)
        assert "exceto a conta de acesso de emergência do NTINF" in flat
        no_sha = flat.replace(backup.get("sha256") or "", "").replace(share_sha, "")
        assert BREAK_GLASS not in no_sha and not re.search(r"(?<![\w.])\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?!\w)", no_sha), ext
        # the switch this PEC refused: done in its UI, by whom (the inventory's confirmation), never claimed written
        assert "Passos feitos na tela do PEC" in flat and "NT-cnes-perfis" in flat
        assert "confirmado por Técnico do Laboratório" in flat
        assert "perfis pela importação do CNES desligada: gravado" not in flat
    assert "break_glass_login" not in record, "the record (a local fact Ansible gathers) holds no CPF"


def test_the_cnes_switch_the_pec_refused_is_a_manual_step_confirmed_at_launch():
    """The double's 4.5.2 has the transmission key (written by the collection) but not the CNES one: its step was
    asked and confirmed in the same run (the inventory's decommission_manual_confirmed), so the flow went through."""
    steps = read_json("/etc/ansible/facts.d/sesdf_esus_manual_steps.fact")["data"]["steps"]
    assert set(steps) == {"NT-cnes-perfis"}
    step = steps["NT-cnes-perfis"]
    assert step["status"] == "confirmado" and step["confirmado_por"] == "Técnico do Laboratório"
    assert step["caminho"].startswith("CNES → Importar")
    record = read_json(RECORD)
    assert record["manual_steps"] == steps and "cnes_profile_reset_off" not in record["switched_off"]


def test_a_killed_backup_step_left_no_pec_down_after_the_run_that_stopped_after_the_backup():
    assert sh("cat /root/migrate-app-after-backup-stop.txt").split() == ["active", "no-marker"]
    assert sh("systemctl is-active e-SUS-PEC.service") == "active"
