"""A UBS on the strict PEC double (only what is known of a real 4.5.2): what the collection refuses, reports and
leaves untouched, and that decommission still completes the rest without claiming what it refused."""

from __future__ import annotations

import collections
import io
import json
import os
import zipfile

import testinfra.utils.ansible_runner
from ansible_module import run_module
from labhost import not_view_only, read_json, sh, sql

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = [f"podman://{name}" for name in RUNNER.get_hosts("all")]
DUMP = os.path.join(os.path.dirname(__file__), "..", "files", "dump.sh")
REFUSED = {"transmission_off", "cnes_profile_reset_off"}
STEPS = {"NT-apta-transmissao", "NT-cnes-perfis"}  # their manual steps
LOTES_DIR = "/opt/e-SUS/webserver/lotes"
SHARE = "/srv/gpma/arquivos"  # file mode's destination (converge)
LEDGER = "/var/lib/sesdf-esus/lotes/ledger.json"


def test_the_strict_double_is_what_a_real_452_offers(host):
    assert sh(host, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/api/public/info") == "404"
    assert sh(host, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/esus/") == "401"
    assert sh(host, "grep -c iniciado /opt/e-SUS/webserver/logs/pec.log || true") == "0", "no start line to wait for"
    config = "SELECT co_config_sistema || '=' || coalesce(ds_texto, '') || '/' || coalesce(ds_inteiro::text, '')"
    keys = sql(host, f"{config} FROM tb_config_sistema WHERE co_config_sistema IN ('TIPOINSTALACAO', 'TREINAMENTO')")
    assert sorted(keys.split()) == ["TIPOINSTALACAO=PRONTUARIO/", "TREINAMENTO=/0"], keys
    tools = "/opt/e-SUS/database/postgresql-9.6.13-1-linux-x64/bin"
    refused = sh(host, f"{tools}/pg_restore --no-comments --list /dev/null 2>&1 || true")
    assert "unrecognized option '--no-comments'" in refused, "the PEC's client tools are 9.6's"
    assert sql(host, "SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'postgres'") == "t"
    assert "md5" in sh(host, "grep -v '^#' /opt/e-SUS/database/postgresql-*/data/pg_hba.conf | grep 127.0.0.1")
    invented = (
        "SELECT count(*) FROM tb_config_sistema WHERE co_config_sistema IN"
        " ('TRANSMISSAO_AUTOMATICA', 'HORARIO_TRANSMISSAO', 'ATUALIZAR_PERFIS_IMPORTACAO_CNES')"
    )
    assert sql(host, invented) == "0"


def test_pec_info_reports_the_refused_capabilities_and_why(host):
    result = run_module(host.backend.get_hostname(), "sesdf.esus.pec_info")
    caps = result["pec"]["capabilities"]
    assert {name for name, cap in caps.items() if not cap["supported"]} == REFUSED
    assert caps["transmission_off"]["missing"] == ["key TRANSMISSAO_AUTOMATICA in tb_config_sistema"]
    assert caps["transmission_off"]["manual"].startswith("Transmissão de dados")
    assert caps["change_profiles"]["supported"] and caps["create_lotes"]["supported"]
    assert result["pec"]["version"]["database"] == "4.5.2" and result["pec"]["version"]["http"] is None


def test_a_refused_switch_wrote_nothing(host):
    with open(DUMP, encoding="utf-8") as handle:
        now = sh(host, "sh", stdin=handle.read())
    before = sh(host, "cat /root/strict-before.sql")
    assert now == before, "the schema, tb_config_sistema or the transmission tables changed"


def test_decommission_completed_the_rest_and_kept_the_refused_switches_as_manual_steps(host):
    assert not_view_only(host) == []
    record = read_json(host, "/etc/ansible/facts.d/sesdf_esus_migration.fact")
    assert record["migrated"] is True and record["role"] == "consultation"
    assert set(record["manual_steps"]) == STEPS
    assert record["manual_steps"]["NT-apta-transmissao"]["caminho"].startswith("Transmissão de dados")
    assert record["switched_off"] == {}, "a refused switch is never claimed written"
    assert not any("transmiss" in key.lower() for key in record if key != "manual_steps")


# Manual steps (converge): the first decommission stops on them, the confirmed one completes and records who/when.


def test_the_first_decommission_stopped_on_the_pending_steps_saying_what_to_do_and_how_to_confirm(host):
    message = sh(host, "cat /root/manual-stop.txt")
    pending = read_json(host, "/root/manual-steps-pending.json")["data"]["steps"]
    assert set(pending) == STEPS, message
    for step in pending.values():
        assert step["status"] == "pendente" and step["confirmado_por"] is None and step["solicitado_em"]
        assert f"[{step['id']}]" in message and step["caminho"] in message
    assert "decommission_manual_confirmed" in message and '"NT-apta-transmissao": "Nome de quem fez"' in message
    # it stopped before marking the server migrated (and so before the jobs, the firewall and the record)
    assert sh(host, "cat /root/manual-stop-record.txt") == "absent"


def test_the_confirmed_run_recorded_who_and_when_on_the_server_and_the_record_carries_it(host):
    pending = read_json(host, "/root/manual-steps-pending.json")["data"]["steps"]
    path = "/etc/ansible/facts.d/sesdf_esus_manual_steps.fact"
    assert sh(host, f"stat -c '%a %U' {path}") == "600 root"
    steps = read_json(host, path)["data"]["steps"]
    assert set(steps) == STEPS, "NT-apta-perfis was confirmed but never asked here: it is not recorded"
    names = {"NT-apta-transmissao": "Ana Laboratório", "NT-cnes-perfis": "Bruno Laboratório"}
    for step_id, step in steps.items():
        assert step["status"] == "confirmado" and step["confirmado_por"] == names[step_id]
        assert step["solicitado_em"] == pending[step_id]["solicitado_em"], "the request kept its time"
        assert step["confirmado_em"] >= step["solicitado_em"]
    record = read_json(host, "/etc/ansible/facts.d/sesdf_esus_migration.fact")
    assert record["manual_steps"] == steps
    # what the report reads: pec_info's state
    state = run_module(host.backend.get_hostname(), "sesdf.esus.pec_info")["pec"]["state"]["manual_steps"]
    assert state["present"] and not state["stale"] and state["data"]["steps"] == steps


def test_the_consultation_checks_say_not_verifiable_with_who_confirmed_never_ok(host):
    result = read_json(host, "/root/consultation-checks.json")
    checks = result["checks"]
    steps = read_json(host, "/etc/ansible/facts.d/sesdf_esus_manual_steps.fact")["data"]["steps"]
    for name, step_id in (("transmissao", "NT-apta-transmissao"), ("cnes_perfis", "NT-cnes-perfis")):
        step = steps[step_id]
        day = "/".join(reversed(step["confirmado_em"][:10].split("-")))
        assert checks[name]["status"] == "não verificável", checks[name]
        assert checks[name]["detail"] == (
            f"confirmado manualmente por {step['confirmado_por']} em {day} (não verificável automaticamente)"
        )
        assert not checks[name]["finding"]
    assert checks["perfis"]["status"] == "ok"  # the strict double lets the collection read the profiles
    assert result["findings"] == []


def test_the_pec_saved_its_automatic_lote_as_a_zip_of_cnes_uuid_entries(host):
    names = [n for n in sh(host, f"ls {LOTES_DIR}").split() if not n.startswith("salvo-")]  # salvo-*: the converge's
    assert names and all(n.startswith("lote-") and n.endswith(".zip") for n in names)
    data = host.file(f"{LOTES_DIR}/{names[0]}").content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = archive.namelist()
    assert entries and all(e.startswith("0030001-") and e.endswith(".esus") for e in entries)


# File mode (converge): the lote files the PEC saved itself, delivered once, the PEC's tables untouched.


def digests(host, pattern):
    """{name: sha256} of the files matching a shell pattern."""
    out = sh(host, f'for f in {pattern}; do [ -f "$f" ] && sha256sum "$f"; done; true')
    return {os.path.basename(line.split(None, 1)[1]): line.split()[0] for line in out.splitlines() if line.strip()}


def test_file_mode_delivered_every_pec_lote_file_exactly_once_with_its_sha256(host):
    pec_files = digests(host, f"{LOTES_DIR}/lote-*.zip")
    assert pec_files, "the PEC saved no lote file"
    at_share = collections.Counter(digests(host, f"{SHARE}/*.zip").values())
    for name, digest in pec_files.items():
        assert at_share[digest] == 1, f"{name} is at the destination {at_share[digest]} time(s)"
    # the operator's copy of the same bytes (salvo-copia.zip) was not sent again; the big one arrived once
    grande = sh(host, "cat /root/lotefile-grande.sha256")
    assert at_share[grande] == 1
    assert sum(at_share.values()) == len(set(pec_files.values())) + 1
    # each delivered file has its sha256 sidecar, nothing partial or hidden is left
    names = sh(host, f"ls -A {SHARE}").split()
    assert not [n for n in names if n.startswith(".")], names
    sidecars = sorted(n for n in names if n.endswith(".sha256"))
    assert sidecars == sorted(f"{n}.sha256" for n in names if n.endswith(".zip"))


def test_file_mode_ledger_lists_each_file_once_and_the_db_mode_lotes_untouched(host):
    ledger = read_json(host, LEDGER)
    files = ledger["files"]
    pec_files = digests(host, f"{LOTES_DIR}/lote-*.zip")
    grande = sh(host, "cat /root/lotefile-grande.sha256")
    assert set(files) == set(pec_files.values()) | {grande}
    assert all(e["confirmed_at"] and e["sha256"] == k for k, e in files.items())
    copia = digests(host, f"{LOTES_DIR}/salvo-copia.zip")["salvo-copia.zip"]
    assert "salvo-copia.zip" in files[copia]["names"] and len(files[copia]["names"]) == 2
    assert ledger["lotes"] and all(e["confirmed_at"] for e in ledger["lotes"].values())  # prepare's db mode


def test_file_mode_left_the_truncated_lote_in_place_and_never_sent_it(host):
    truncated = sh(host, "cat /root/lotefile-truncado.sha256")
    assert digests(host, f"{LOTES_DIR}/salvo-truncado.zip") == {"salvo-truncado.zip": truncated}
    assert truncated not in digests(host, f"{SHARE}/*").values()
    assert truncated not in read_json(host, LEDGER)["files"]
    cut = read_json(host, "/root/lotefile-cut-result.json")
    assert cut["source"] == "files" and [i["file"] for i in cut["invalid"]] == ["salvo-truncado.zip"]


def test_file_mode_wrote_nothing_in_the_pec_tables(host):
    with open(DUMP, encoding="utf-8") as handle:
        now = sh(host, "sh", stdin=handle.read())
    # the dump was taken at the end of prepare, before any file mode run
    assert now == sh(host, "cat /root/strict-before.sql"), "tb_lote_transp or tb_dado_transp changed"


def test_file_mode_a_copy_killed_half_way_left_nothing_under_the_final_name_and_the_rerun_delivered_once(host):
    grande = sh(host, "cat /root/lotefile-grande.sha256")
    cut = read_json(host, "/root/lotefile-cut-result.json")
    after_cut = sh(host, "cat /root/lotefile-after-cut.txt").split()
    assert cut["pending"] == 1 and cut["sent"] == 1  # the PEC's lote went through, the big one died mid-copy
    assert not [n for n in after_cut if "salvo-grande" in n], after_cut  # no final name, no partial
    assert [n for n in after_cut if n.endswith(".zip")], after_cut
    delivered = [n for n, d in digests(host, f"{SHARE}/*.zip").items() if d == grande]
    assert len(delivered) == 1 and delivered[0].startswith("0030001-salvo-grande-")


def test_file_mode_check_mode_reports_the_mode_and_sends_nothing(host):
    args = {"source": "auto", "destination": {"type": "path", "path": SHARE}}
    auto = run_module(host.backend.get_hostname(), "sesdf.esus.pec_lotes", args, check=True)
    assert not auto["failed"] and auto["source"] == "db"  # the strict double supports both capabilities
    args = {"source": "files", "files_settle_seconds": 30, "destination": {"type": "path", "path": SHARE}}
    before = sh(host, f"ls -A {SHARE}; cat {LEDGER}")
    files = run_module(host.backend.get_hostname(), "sesdf.esus.pec_lotes", args, check=True)
    assert not files["failed"] and files["source"] == "files" and files["changed"] is False
    assert files["sent"] == 0 and files["files"]["to_send"] == []
    assert [i["file"] for i in files["files"]["invalid"]] == ["salvo-truncado.zip"]
    assert all(not q.lstrip().upper().startswith(("INSERT", "UPDATE")) for q in files["executed_queries"])
    assert sh(host, f"ls -A {SHARE}; cat {LEDGER}") == before
    assert json.loads(sh(host, f"cat {LEDGER}"))["files"]
