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
from labhost import not_view_only, pec_app_password, read_json, sh, sql

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = [f"podman://{name}" for name in RUNNER.get_hosts("all")]
DUMP = os.path.join(os.path.dirname(__file__), "..", "files", "dump.sh")
# the switches' keys do not exist, nor the old model's tb_situacao_lote_transp (the lotes capabilities)
REFUSED = {"transmission_off", "cnes_profile_reset_off", "create_lotes", "mark_lotes_sent"}
# their manual steps, and the profile change no survey backs (the region's default trust)
STEPS = {"NT-apta-transmissao", "NT-cnes-perfis", "NT-apta-perfis"}
INBOX = "/var/lib/sesdf-esus/lotes/entrada"
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
    # a region's default: no write rests on the double's built-in profiles without a survey of a real server
    survey = run_module(host.backend.get_hostname(), "sesdf.esus.pec_info")["pec"]["capabilities"]
    assert not any(cap["supported"] for cap in survey.values())
    assert "no survey of a real PEC of this version matches" in survey["change_profiles"]["reason"]
    # what the lab trusts (the double's profiles): only what this schema lacks is refused
    result = run_module(host.backend.get_hostname(), "sesdf.esus.pec_info", {"schema_trust": "double"})
    caps = result["pec"]["capabilities"]
    assert {name for name, cap in caps.items() if not cap["supported"]} == REFUSED
    assert caps["transmission_off"]["missing"] == ["key TRANSMISSAO_AUTOMATICA in tb_config_sistema"]
    assert caps["transmission_off"]["manual"].startswith("Transmissão de dados")
    assert caps["change_profiles"]["supported"]
    assert "table tb_situacao_lote_transp" in caps["create_lotes"]["missing"]
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
    assert record["manual_steps"]["NT-apta-perfis"]["caminho"].startswith("Administração → Perfis")
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
    assert set(steps) == STEPS
    names = {
        "NT-apta-transmissao": "Ana Laboratório",
        "NT-cnes-perfis": "Bruno Laboratório",
        "NT-apta-perfis": "Ana Laboratório",
    }
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
    for name, step_id in (
        ("transmissao", "NT-apta-transmissao"),
        ("cnes_perfis", "NT-cnes-perfis"),
        ("perfis", "NT-apta-perfis"),  # no survey backs reading them for the change either: the operator's word
    ):
        step = steps[step_id]
        day = "/".join(reversed(step["confirmado_em"][:10].split("-")))
        assert checks[name]["status"] == "não verificável", checks[name]
        assert checks[name]["detail"] == (
            f"confirmado manualmente por {step['confirmado_por']} em {day} (não verificável automaticamente)"
        )
        assert not checks[name]["finding"]
    assert result["findings"] == []


def test_the_strict_double_tracks_transmission_per_node_and_writes_no_lote_directory(host):
    assert not host.file("/opt/e-SUS/webserver/lotes").exists
    tables = sql(
        host,
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_name LIKE 'tb_%lote_transp%'",
    ).split(",")
    assert "tb_lote_transp_item_nodo" in tables and "tb_situacao_lote_transp" not in tables
    assert sql(host, "SELECT count(*) FROM tb_lote_transp_item_nodo WHERE co_situacao_dbl = 2") == "25"
    with zipfile.ZipFile(io.BytesIO(host.file(sh(host, "ls /root/Downloads/RAS_Lote*.zip")).content)) as archive:
        entries = archive.namelist()
    assert len(entries) == 400 and all(e.split("/")[1].startswith("0030001-") for e in entries)


# File mode (converge): the lote files saved from the PEC, checked by their content, delivered once, the PEC's
# tables untouched; the gate counts every record delivered in a file or at the node.


def digests(host, pattern):
    """{name: sha256} of the files matching a shell pattern."""
    out = sh(host, f'for f in {pattern}; do [ -f "$f" ] && sha256sum "$f"; done; true')
    return {os.path.basename(line.split(None, 1)[1]): line.split()[0] for line in out.splitlines() if line.strip()}


def test_file_mode_delivered_the_operators_lote_exactly_once_with_its_sha256(host):
    saved = sh(host, "cat /root/lotefile-saved.sha256")
    at_share = collections.Counter(digests(host, f"{SHARE}/*.zip").values())
    assert at_share == {saved: 1}, at_share  # its browser copy "(1)" was not sent again; nothing invalid was
    names = sh(host, f"ls -A {SHARE}").split()
    assert not [n for n in names if n.startswith(".")], names
    sidecars = sorted(n for n in names if n.endswith(".sha256"))
    assert sidecars == sorted(f"{n}.sha256" for n in names if n.endswith(".zip"))


def test_file_mode_ledger_lists_the_file_once_with_both_names_and_its_400_records(host):
    ledger = read_json(host, LEDGER)
    saved = sh(host, "cat /root/lotefile-saved.sha256")
    assert list(ledger["files"]) == [saved] and ledger["lotes"] == {}
    entry = ledger["files"][saved]
    assert entry["confirmed_at"] and entry["records"] == 400 and len(entry["names"]) == 2
    assert len(sh(host, f"cat /var/lib/sesdf-esus/lotes/{entry['uuids_file']}").split()) == 400


def test_file_mode_refused_the_truncated_foreign_and_garbage_files_with_their_reasons_and_left_them(host):
    cut = read_json(host, "/root/lotefile-cut-result.json")
    reasons = {i["file"]: i["reason"] for i in cut["invalid"]}
    assert set(reasons) == {f"RAS_Lote9{n}_01-12-2026--10-0{n}.zip" for n in range(3)}, reasons
    assert "0039999" in reasons["RAS_Lote91_01-12-2026--10-01.zip"]
    truncated = sh(host, "cat /root/lotefile-truncado.sha256")
    assert digests(host, f"{INBOX}/RAS_Lote90_01-12-2026--10-00.zip") == {"RAS_Lote90_01-12-2026--10-00.zip": truncated}
    assert truncated not in read_json(host, LEDGER)["files"]


def test_file_mode_gate_counts_the_online_lote_at_the_node_and_the_saved_records_in_the_file(host):
    cut = read_json(host, "/root/lotefile-cut-result.json")
    assert cut["gate"]["db_records"] == 425 and cut["gate"]["at_node"] == 25 and cut["gate"]["missing"] == 400
    args = {"lotes_source": "files", "cnes": "0030001", "fail_on_problems": False, "backup_max_age_hours": 0}
    inventory = RUNNER.get_variables(host.backend.get_hostname())
    query, requires = inventory["sesdf_esus_pec_node_query"], inventory["sesdf_esus_pec_node_query_requires"]
    ok = run_module(
        host.backend.get_hostname(),
        "sesdf.esus.pec_decommission_check",
        args | {"node_query": query, "node_query_requires": requires},
        check=True,
    )
    records = ok["files"]["records"]
    assert (records["db_records"], records["at_node"], records["delivered_in_files"], records["missing"]) == (
        425,
        25,
        400,
        0,
    )
    # without the survey's query the PEC's online delivery cannot be observed: those 25 records block, named
    blind = run_module(host.backend.get_hostname(), "sesdf.esus.pec_decommission_check", args, check=True)
    assert blind["files"]["records"]["missing"] == 25 and not blind["files"]["records"]["node_observable"]
    assert any("não é verificável" in p and "25 registro(s)" in p for p in blind["problems"]), blind["problems"]


def test_file_mode_wrote_nothing_in_the_pec_tables(host):
    with open(DUMP, encoding="utf-8") as handle:
        now = sh(host, "sh", stdin=handle.read())
    # the dump was taken at the end of prepare, before any file mode run
    assert now == sh(host, "cat /root/strict-before.sql"), "the transmission tables changed"


def test_file_mode_a_copy_killed_half_way_left_nothing_under_the_final_name_and_the_rerun_delivered_once(host):
    saved = sh(host, "cat /root/lotefile-saved.sha256")
    cut = read_json(host, "/root/lotefile-cut-result.json")
    after_cut = sh(host, "cat /root/lotefile-after-cut.txt").split()
    assert cut["pending"] == 1 and cut["sent"] == 0  # the copy died mid-way (the share was full)
    assert not [n for n in after_cut if n.endswith(".zip")], after_cut  # no final name, no partial
    delivered = [n for n, d in digests(host, f"{SHARE}/*.zip").items() if d == saved]
    assert len(delivered) == 1 and delivered[0].startswith("0030001-RAS_Lote")


def test_file_mode_check_mode_reports_the_mode_and_sends_nothing(host):
    args = {"source": "auto", "destination": {"type": "path", "path": SHARE}, "schema_trust": "double"}
    auto = run_module(host.backend.get_hostname(), "sesdf.esus.pec_lotes", args, check=True)
    assert not auto["failed"] and auto["source"] == "files"  # the strict double has no old-model lote tables
    inventory = RUNNER.get_variables(host.backend.get_hostname())
    args = {
        "source": "files",
        "files_settle_seconds": 30,
        "cnes": "0030001",
        "destination": {"type": "path", "path": SHARE},
        "node_query": inventory["sesdf_esus_pec_node_query"],
        "node_query_requires": inventory["sesdf_esus_pec_node_query_requires"],
    }
    before = sh(host, f"ls -A {SHARE}; cat {LEDGER}")
    files = run_module(host.backend.get_hostname(), "sesdf.esus.pec_lotes", args, check=True)
    assert not files["failed"] and files["source"] == "files" and files["changed"] is False
    assert files["sent"] == 0 and files["files"]["to_send"] == []
    assert len(files["files"]["invalid"]) == 3
    assert all(not q.lstrip().upper().startswith(("INSERT", "UPDATE")) for q in files["executed_queries"])
    assert sh(host, f"ls -A {SHARE}; cat {LEDGER}") == before
    assert json.loads(sh(host, f"cat {LEDGER}"))["files"]


# The survey (playbooks/survey.yml's module) on the strict double: what it collects, and no secret or personal data.


def test_the_survey_sees_the_per_node_tables_and_carries_no_secret_patient_data_or_hostname(host):
    survey = run_module(host.backend.get_hostname(), "sesdf.esus.pec_survey", check=True)
    assert not survey["failed"] and survey["changed"] is False
    bundle = survey["bundle"]
    schema = bundle["schema"]
    assert schema["tb_situacao_lote_transp"] is None, "absent on real servers, recorded absent"
    assert "co_unico_dado_serializado" in schema["tb_dado_transp"]["columns"]
    assert "co_situacao_dbl" in schema["tb_lote_transp_item_nodo"]["columns"]
    assert "TIPOINSTALACAO" in bundle["reference"]["config_sistema_keys"]
    assert "TRANSMISSAO_AUTOMATICA" not in bundle["reference"]["config_sistema_keys"]
    text = json.dumps(bundle, ensure_ascii=False)
    canaries = {
        "database password": pec_app_password(host),
        "a patient's name": sql(host, "SELECT no_cidadao FROM tb_cidadao ORDER BY 1 LIMIT 1"),
        "a patient's CPF": sql(host, "SELECT nu_cpf FROM tb_cidadao WHERE nu_cpf IS NOT NULL ORDER BY 1 LIMIT 1"),
        "a professional's login (CPF)": sql(host, "SELECT ds_login FROM tb_usuario ORDER BY 1 LIMIT 1"),
        "the installation's name": sql(
            host, "SELECT ds_texto FROM tb_config_sistema WHERE co_config_sistema = 'NOMEINSTALACAO'"
        ),
        "the hostname": sh(host, "hostname"),
    }
    for what, value in canaries.items():
        assert value and value not in text, f"{what} is in the survey bundle"
    assert len(text.encode()) < 1024 * 1024
