"""A UBS migrated by playbooks/migrate.yml: what GPMA, IT (CTINF), NTINF and an auditor would check.

Prepare left a 4.2.8 UBS with pending production, a break-glass admin, a snapshot of the patient data and the
state before the check run; converge ran the flow once with migrate_stop_after=lotes, then (after leaving what a run
killed in the backup step leaves: the PEC stopped with the collection's marker, a partial copy in the share) with
migrate_stop_after=backup, then to the end.
State is read with `podman exec` (fast); one psql query per check.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess

import labhost
import pytest
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


@pytest.mark.nt("NT-apta-3")
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


@pytest.mark.nt("NT-ntinf-1")
def test_pec_runs_452_in_config_and_database_and_answers_as_a_real_one():
    config = read_json("/etc/pec.config")["version"]
    database = sql(VERSION_SQL)
    assert (config, database) == ("4.5.2", "4.5.2")
    # a real 4.5.2 has no version endpoint; its start page answers 401 to an anonymous request
    status = "curl -s -o /dev/null -w '%{http_code}' --retry 5 --retry-connrefused http://127.0.0.1:8080"
    assert (sh(f"{status}/esus/"), sh(f"{status}/api/public/info")) == ("401", "404")


@pytest.mark.nt("NT-apta-2")
def test_the_saved_lote_file_was_delivered_once_and_every_record_is_in_it_or_at_the_node():
    pending_rows, _lotes_before = (int(x) for x in sh("cat /root/migrate-pending.txt").split("|"))
    assert pending_rows == 25
    ledger = read_json(LEDGER)
    assert ledger["lotes"] == {}, "nothing was written in the PEC's tables (file mode)"
    files = ledger["files"]
    at_dest = dict(line.split("  ")[::-1] for line in sh(f"cd {GPMA} && sha256sum *.zip").splitlines())
    assert len(files) == 1 and len(at_dest) == 1, "one file, sent once"
    ((digest, entry),) = files.items()
    assert entry["confirmed_at"] and entry["records"] == pending_rows
    assert at_dest[entry["dest_file"]] == digest == sh("sha256sum /root/Downloads/RAS_Lote*.zip").split()[0]
    # every record is in a lote: the 50 sent online (at the node) and the 25 in the file; without the survey's node
    # query the 50 online ones cannot be seen, and the gate says so
    unbatched = sql(
        "SELECT count(*) FROM tb_dado_transp d WHERE NOT EXISTS"
        " (SELECT 1 FROM tb_lote_transp_item i WHERE i.co_dado_transp_dbl = d.co_seq_dado_transp)"
    )
    assert unbatched == "0"
    check = run_module(
        HOST,
        "sesdf.esus.pec_decommission_check",
        {"lotes_source": "files", "cnes": "0030001", "fail_on_problems": False, "backup_max_age_hours": 0},
        check=True,
    )
    records = check["files"]["records"]
    assert records["missing"] == 50 and not records["node_observable"], "without the survey's query: not verifiable"


@pytest.mark.nt("NT-ntinf-3")
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
    assert sql("SELECT count(*) FROM tb_config_sistema WHERE co_config_sistema = 'TRANSMISSAO_AUTOMATICA'") == "0"
    assert "tcp dport 8080 accept" in sh("nft list table inet sesdf_consultation")
    assert sh("systemctl is-active e-SUS-PEC.service") == "active"


@pytest.mark.nt("NT-apta-5")
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
    lotes = len(read_json(LEDGER)["files"])
    assert record["switched_off"] == {}, "a switch this PEC refused is never claimed written"
    date = record["date"][:10]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)
    for ext in ("md", "html", "pdf"):
        path = os.path.join(NOTICES, f"aviso-migracao-0030001-{date}.{ext}")
        if ext == "pdf":  # the PDF's text in reading order (pdftotext: poppler-utils, installed by make deps)
            text = subprocess.run(["pdftotext", path, "-"], capture_output=True, text=True, check=True).stdout
            fonts = subprocess.run(["pdffonts", path], capture_output=True, text=True, check=True).stdout
            rows = fonts.splitlines()[2:]
            assert rows and all(row.split()[-5] == "yes" for row in rows), f"a font not embedded: {fonts}"
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
        # the switches this PEC refused are never claimed written
        assert "gravado pela coleção no banco do PEC" not in flat
        # personal data: the break-glass administrator is named by its role, never by its login (a CPF)
        assert "exceto a conta de acesso de emergência do NTINF" in flat
        no_sha = flat.replace(backup.get("sha256") or "", "").replace(share_sha, "")
        assert BREAK_GLASS not in no_sha and not re.search(r"(?<![\w.])\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?!\w)", no_sha), ext
        # the switches this PEC refused: done in its UI, by whom (the inventory's confirmation)
        assert "Passos feitos na tela do PEC" in flat and "NT-cnes-perfis" in flat and "NT-apta-transmissao" in flat
        assert "confirmado por Técnico do Laboratório" in flat
        assert "perfis pela importação do CNES desligada: gravado" not in flat
    assert "break_glass_login" not in record, "the record (a local fact Ansible gathers) holds no CPF"


def test_the_switches_the_pec_refused_are_manual_steps_confirmed_at_launch():
    """A real PEC has neither switch's tb_config_sistema key: both steps were asked and confirmed in the same run (the
    inventory's decommission_manual_confirmed), so the flow went through."""
    steps = read_json("/etc/ansible/facts.d/sesdf_esus_manual_steps.fact")["data"]["steps"]
    assert set(steps) == {"NT-cnes-perfis", "NT-apta-transmissao"}
    for step in steps.values():
        assert step["status"] == "confirmado" and step["confirmado_por"] == "Técnico do Laboratório"
    assert steps["NT-cnes-perfis"]["caminho"].startswith("CNES → Importar")
    assert steps["NT-apta-transmissao"]["caminho"].startswith("Transmissão de dados")
    record = read_json(RECORD)
    assert record["manual_steps"] == steps and record["switched_off"] == {}


def test_a_killed_backup_step_left_no_pec_down_after_the_run_that_stopped_after_the_backup():
    assert sh("cat /root/migrate-app-after-backup-stop.txt").split() == ["active", "no-marker"]
    assert sh("systemctl is-active e-SUS-PEC.service") == "active"
