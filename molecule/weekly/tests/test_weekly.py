"""The weekly routine on two lab UBS: what the GSAP manager, NTINF and NCAIS would notice.

ubs455 runs PEC 4.5.5 on the full double (no CNES API: staged manual import), apt, sends lotes by rsync over SSH.
ubs452 runs PEC 4.5.2 on the strict double (no CNES API, transmission per node), inapt (weekly job on a timer), sends
the lote files the operator saved from the PEC (file mode) to a mounted path.
ubs55 runs PEC 5.5.28 (the 5.5 schema; CNES through the session API with XSRF, asynchronous), inapt, file mode.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import zipfile

import pytest
import testinfra.utils.ansible_runner
from ansible_module import run_module
from labhost import read_json
from labhost import sql_rows as sql

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
# podman exec directly (the ansible backend costs seconds per command)
testinfra_hosts = [f"podman://{name}" for name in RUNNER.get_hosts("all")]
H455 = "sesdf-weekly-ubs455"
H452 = "sesdf-weekly-ubs452"
H55 = "sesdf-weekly-ubs55"
ZIP = "/srv/ncais/cnes/XmlParaESUS31_530010.zip"
FACT = "/etc/ansible/facts.d/sesdf_esus_cnes.fact"
DEST = {H455: "/srv/ncais-ssh/lotes", H452: "/srv/ncais/lotes", H55: "/srv/ncais/lotes"}
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def only(host, *names):
    if host.backend.get_hostname() not in names:
        pytest.skip(f"{', '.join(names)} only")


def sha256(host, path):
    with host.sudo():
        return host.check_output(f"sha256sum {path}").split()[0]


def dest_zips(host):
    """{file name: {uuid: bytes}} of the lote zips at NCAIS's destination."""
    dest = DEST[host.backend.get_hostname()]
    with host.sudo():
        names = host.check_output(f"ls -1 {dest}").split()
        out = {}
        for name in names:
            if name.endswith(".zip"):
                data = base64.b64decode(host.check_output(f"base64 -w0 {dest}/{name}"))
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    out[name] = {n[: -len(".esus")]: archive.read(n) for n in archive.namelist()}
    return out, names


def db_rows_of_lotes(host, lote_ids):
    ids = ",".join(str(i) for i in lote_ids)
    rows = sql(
        host,
        "SELECT nu_uuid, translate(encode(ds_dado, 'base64'), E'\\n', '') FROM tb_dado_transp "  # noqa: S608
        f"WHERE co_lote_transp IN ({ids})",
    )
    return {u: base64.b64decode(b) for u, b in rows}


@pytest.mark.nt("NT-inapta-7")
def test_cnes_file_is_imported_through_the_5x_session_api_and_its_end_is_verified(host):
    """5.5: login through GraphQL with XSRF, the PEC's own município id, the import followed to CONCLUIDO."""
    only(host, H55)
    fact = read_json(host, FACT)
    digest = sha256(host, ZIP)
    last = fact["last_import"]
    assert last["method"] == "api" and last["sha256"] == digest and last["verified"] is True, fact
    assert last["date"] and fact["pending_manual"] is None
    # the PEC itself recorded the same file, once
    assert sql(host, "SELECT ds_sha256 FROM tb_cnes_importacao") == [[digest]]
    # and did what the warning says: the unit the file lacks (the generator's external UBS) was deactivated
    units = sql(host, "SELECT nu_cnes, st_ativo FROM tb_unidade_saude ORDER BY nu_cnes")
    assert units == [["0010003", "1"], ["0010004", "0"]]


def test_cnes_file_is_staged_for_a_manual_import_on_4_x(host):
    only(host, H452, H455)
    fact = read_json(host, FACT)
    assert fact["last_import"] is None and fact["pending_manual"]["sha256"] == sha256(host, ZIP)
    staged = "/var/lib/sesdf-esus/cnes/importacao-manual-pendente"
    assert sha256(host, f"{staged}/XmlParaESUS31_530010.zip") == sha256(host, ZIP)
    with host.sudo():
        notice = host.file(f"{staged}/AVISO-IMPORTACAO-CNES.txt").content_string
    assert "IMPORTAÇÃO DO CNES PENDENTE" in notice and 'Menu "CNES"' in notice
    # nothing reached the PEC (4.5.2 has no import table; the double's 4.5.5 one is empty)
    if host.backend.get_hostname() == H452:
        assert sql(host, "SELECT count(*) FROM pg_tables WHERE tablename = 'tb_cnes_importacao'") == [["0"]]
    else:
        assert sql(host, "SELECT count(*) FROM tb_cnes_importacao") == [["0"]]


@pytest.mark.nt("NT-perfis-1")
def test_profile_audit_finds_exactly_the_generated_mismatches(host):
    report = read_json(host, "/var/lib/sesdf-esus/auditoria-perfis.json")
    kinds = sorted(m["tipo"] for m in report["mismatches"])
    if host.backend.get_hostname() == H55:
        # 5.5 (its schema read as well as 4.x's): the week's CNES import already deactivated the lotação in the
        # other CNES, which the file lacks; the two profiles not allowed for the CBO remain
        assert kinds == ["perfil_nao_permitido_para_cbo", "perfil_nao_permitido_para_cbo"]
    else:
        # pec-double-generate --profile-mismatches 3: two profiles not allowed for the CBO, one lotação elsewhere
        assert kinds == ["lotacao_em_outro_cnes", "perfil_nao_permitido_para_cbo", "perfil_nao_permitido_para_cbo"]
        other = next(m for m in report["mismatches"] if m["tipo"] == "lotacao_em_outro_cnes")
        assert other["cnes"] != report["cnes"]
    assert report["ubs"] == host.backend.get_hostname() and report["regiao"] == "regiao_norte"


INBOX = "/var/lib/sesdf-esus/lotes/entrada"
PROGRAM = "/usr/local/sbin/sesdf-esus-lotes --config /etc/sesdf-esus/lotes-export.json"


def new_records(host, n):
    """n new records on the strict double, in no lote (copies of a record under new uuids, the LEDI bytes' uuid
    replaced too): their uuids."""
    rows = sql(
        host,
        "INSERT INTO tb_dado_transp (co_unico_dado_serializado, tp_dado_dbl, co_unidade_saude_dbl, dt_registro_dbl,"  # noqa: S608
        " ds_dado_dbl) SELECT n.u, d.tp_dado_dbl, d.co_unidade_saude_dbl, now(), overlay(d.ds_dado_dbl placing"
        " convert_to(n.u, 'UTF8') from position(convert_to(d.co_unico_dado_serializado, 'UTF8') in d.ds_dado_dbl)"
        " for 36) FROM (SELECT * FROM tb_dado_transp ORDER BY co_seq_dado_transp LIMIT 1) d,"
        f" (SELECT gen_random_uuid()::text AS u FROM generate_series(1, {int(n)})) n"
        " RETURNING co_unico_dado_serializado",
    )
    return sorted(row[0] for row in rows)


def sent_online(host, uuids):
    """The PEC's online transmission of these records, as the strict double's automatic lote records it: one lote
    sent to every destination node (ENVIADO per lote and per item)."""
    ids = ", ".join(f"'{u}'" for u in uuids)
    sql(
        host,
        f"WITH d AS (SELECT co_seq_dado_transp FROM tb_dado_transp WHERE co_unico_dado_serializado IN ({ids})),"  # noqa: S608
        " lt AS (INSERT INTO tb_lote_transp (dt_criacao, dt_inicio_periodo_dbl, dt_fim_periodo_dbl, qt_registros_dbl)"
        " SELECT now(), current_date, current_date, count(*) FROM d RETURNING co_seq_lote_transp),"
        " it AS (INSERT INTO tb_lote_transp_item (co_lote_transp_dbl, co_dado_transp_dbl) SELECT lt.co_seq_lote_transp,"
        " d.co_seq_dado_transp FROM lt, d RETURNING co_seq_lote_transp_item_dbl),"
        " ln AS (INSERT INTO tb_lote_transp_nodo (co_lote_transp_dbl, co_nodo_dbl, co_situacao_dbl, dt_envio_dbl)"
        " SELECT lt.co_seq_lote_transp, n.co_seq_nodo, 2, now() FROM lt, tb_nodo n RETURNING 1)"
        " INSERT INTO tb_lote_transp_item_nodo (co_lote_transp_item_dbl, co_nodo_dbl, co_situacao_dbl)"
        " SELECT it.co_seq_lote_transp_item_dbl, n.co_seq_nodo, 2 FROM it, tb_nodo n RETURNING 1",
    )


def new_production(host, n):
    """n new records and the operator's "Salvar em arquivo" of them into the inbox, settled: the saved file's name."""
    new_records(host, n)
    with host.sudo():
        saved = json.loads(host.check_output(f"pec-double-generate salvar-lote --destino {INBOX}"))
        host.check_output(f"touch -d '-1 hour' {saved['arquivo']}")
    return os.path.basename(saved["arquivo"])


def test_exported_lotes_equal_the_transmission_rows_in_count_and_content(host):
    only(host, H455)
    zips, names = dest_zips(host)
    ledger = read_json(host, "/var/lib/sesdf-esus/lotes/ledger.json")
    ids = sorted(int(k) for k in ledger["lotes"])[:1]  # the converge's lote (later tests add more)
    first = ledger["lotes"][str(ids[0])]
    assert first["manifest"] in names and all(n.endswith((".zip", ".manifest.json")) for n in names)
    delivered = zips[first["file"]]
    assert len(delivered) == 30
    assert delivered == db_rows_of_lotes(host, ids)
    assert sql(host, "SELECT count(*) FROM tb_dado_transp WHERE co_lote_transp IS NULL") == [["0"]]
    states = sql(host, f"SELECT co_situacao, qt_registros FROM tb_lote_transp WHERE co_seq_lote_transp = {ids[0]}")  # noqa: S608
    assert states == [["2", "30"]]  # ENVIADO, as the PEC would mark a sent lote
    entry = ledger["lotes"][str(ids[0])]
    assert entry["confirmed_at"] and entry["sha256"] == sha256(
        host, f"{DEST[host.backend.get_hostname()]}/{entry['file']}"
    )
    with host.sudo():
        assert host.file("/var/lib/sesdf-esus/lotes/ledger.json").mode == 0o600


def test_weekly_job_on_a_timer_only_on_the_inapt_ubs_and_without_secrets(host):
    with host.sudo():
        units = [host.file(f"/etc/systemd/system/sesdf-esus-lotes.{kind}") for kind in ("service", "timer")]
        assert not host.file("/etc/cron.d/sesdf-esus-lotes").exists, "the weekly job runs on its timer, not cron"
        if host.backend.get_hostname() == H455:
            assert not any(unit.exists for unit in units), "apt UBS: Ansible runs the export"
            return
        timer = host.service("sesdf-esus-lotes.timer")
        assert timer.is_enabled and timer.is_running
        text = units[0].content_string + units[1].content_string
        assert f"ExecStart={PROGRAM}" in text and "OnCalendar=Mon *-*-* 06:30:00" in text and "Persistent=true" in text
        config = host.file("/etc/sesdf-esus/lotes-export.json")
        assert config.mode == 0o600 and config.user == "root"
        password = next(
            line.split("=", 1)[1]
            for line in host.file("/opt/e-SUS/webserver/config/application.properties").content_string.splitlines()
            if line.startswith("spring.datasource.password")
        )
        assert password not in text + config.content_string


@pytest.mark.nt("NT-inapta-8")
def test_the_inapt_ubs_delivered_the_operators_lote_file_checked_by_its_content(host):
    only(host, H452, H55)
    ledger = read_json(host, "/var/lib/sesdf-esus/lotes/ledger.json")
    assert ledger["lotes"] == {}, "file mode: nothing written in the PEC's tables"
    first = min(ledger["files"].values(), key=lambda e: e["first_seen_at"])
    with host.sudo():
        saved = host.check_output("ls /root/Downloads").split()[0]
        assert first["sha256"] == sha256(host, f"/root/Downloads/{saved}")
    assert first["confirmed_at"] and first["records"] == 30 and first["records_by_type"] == {"2": 10, "4": 20}
    zips, _names = dest_zips(host)
    delivered = zips[first["dest_file"]]
    assert len(delivered) == 30
    uuids = {name.rsplit("/", 1)[-1].split("-", 1)[1] for name in delivered}
    rows = sql(
        host,
        "SELECT co_unico_dado_serializado, translate(encode(ds_dado_dbl, 'base64'), E'\\n', '') FROM tb_dado_transp",
    )
    by_uuid = {u: base64.b64decode(b) for u, b in rows}
    assert {k.rsplit("/", 1)[-1].split("-", 1)[1]: v for k, v in delivered.items()} == {u: by_uuid[u] for u in uuids}


def test_the_job_delivers_new_production_the_operator_saved_without_ansible(host):
    only(host, H452)
    name = new_production(host, 5)
    with host.sudo():
        run = host.run(PROGRAM)
    assert run.rc == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["exported"] == 0 and summary["confirmed"] == 1 and summary["pending"] == 0
    assert summary["source"] == "files" and summary["gate"]["missing"] == 0 and summary["gate"]["at_node"] == 50
    newest = next(lote for lote in summary["lotes"] if lote["file"] == name)
    assert newest["confirmed"] and newest["records"] == 5


def test_on_5_5_the_gate_names_exactly_the_records_neither_at_a_node_nor_in_a_delivered_file(host):
    """A week on 5.5.28: two records sent online to the node, two saved to a file by the operator, three nobody
    exported. The file is delivered once; the migration gate counts the first four and names the last three."""
    only(host, H55)
    online = new_records(host, 2)
    sent_online(host, online)
    new_production(host, 2)
    files_before = len(read_json(host, "/var/lib/sesdf-esus/lotes/ledger.json")["files"])
    with host.sudo():
        first, again = host.run(PROGRAM), host.run(PROGRAM)
    assert first.rc == 0 and again.rc == 0, first.stderr + again.stderr
    assert json.loads(first.stdout)["confirmed"] == 1 and json.loads(again.stdout)["confirmed"] == 0
    ledger = read_json(host, "/var/lib/sesdf-esus/lotes/ledger.json")["files"]
    assert len(ledger) == files_before + 1, "the saved file is in the ledger once"
    missing = new_records(host, 3)
    args = {"lotes_source": "files", "cnes": "0010003", "fail_on_problems": False, "backup_max_age_hours": 0}
    inventory = RUNNER.get_variables(H55)
    args |= {
        "node_query": inventory["sesdf_esus_pec_node_query"],
        "node_query_requires": inventory["sesdf_esus_pec_node_query_requires"],
    }
    check = run_module(H55, "sesdf.esus.pec_decommission_check", args, check=True)
    records = check["files"]["records"]
    # the generator's 2 lotes of 25 sent online, the 30 records of the prepare's file; then this test's 2 + 2 + 3
    assert (records["db_records"], records["at_node"], records["delivered_in_files"], records["missing"]) == (
        87,
        52,
        32,
        3,
    )
    named = next(p for p in check["problems"] if "3 registro(s)" in p)
    assert all(uuid in named for uuid in missing) and not any(uuid in named for uuid in online)


def test_lote_altered_at_the_destination_is_detected_and_sent_again(host):
    only(host, H452)
    ledger = read_json(host, "/var/lib/sesdf-esus/lotes/ledger.json")
    entry = min(ledger["files"].values(), key=lambda e: e["first_seen_at"])
    path = f"/srv/ncais/lotes/{entry['dest_file']}"
    with host.sudo():
        host.check_output(f"printf 'X' | dd of={path} bs=1 seek=40 conv=notrunc status=none")
        assert sha256(host, path) != entry["sha256"]
        run = host.run(PROGRAM)
    assert run.rc == 0, run.stderr
    assert sha256(host, path) == entry["sha256"]
    assert "alterado no destino" in run.stderr


def test_destination_down_keeps_the_lote_and_the_next_run_delivers_it(host):
    only(host, H452)
    new_production(host, 1)
    with host.sudo():
        host.check_output("mv /srv/ncais/lotes /srv/ncais/lotes.offline")
        try:
            down = host.run(PROGRAM)
        finally:
            host.check_output("mv /srv/ncais/lotes.offline /srv/ncais/lotes")
        assert down.rc == 3 and "not mounted" in down.stdout  # the lote pending: exit 3 (attention)
        assert json.loads(down.stdout)["pending"] == 1
        up = host.run(PROGRAM)
    assert up.rc == 0 and json.loads(up.stdout)["pending"] == 0


def test_consultation_server_never_imports_the_cnes(host):
    only(host, H452)
    with host.sudo():
        host.check_output(
            'mkdir -p /etc/ansible/facts.d && echo \'{"migrated": true, "date": "2026-01-01"}\' '
            "> /etc/ansible/facts.d/sesdf_esus_migration.fact"
        )
        host.check_output(f"cp -p {ZIP} /root/distribuido.zip.bak")
        host.check_output(
            "cd /root && rm -f XmlParaESUS31_530010.xml && cp cnes.xml XmlParaESUS31_530010.xml && "
            "echo '<!-- nova semana -->' >> XmlParaESUS31_530010.xml && "
            "zip -q -j /srv/ncais/cnes/XmlParaESUS31_530010.zip XmlParaESUS31_530010.xml"
        )
        before = host.file(FACT).content_string
    try:
        env = dict(os.environ)
        proc = subprocess.run(
            [
                "ansible-playbook",
                "-i",
                os.path.dirname(INVENTORY),
                os.path.join(REPO, "playbooks", "weekly.yml"),
                "--limit",
                H452,
                "--tags",
                "cnes_import",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "modo consulta" in proc.stdout
        with host.sudo():
            assert host.file(FACT).content_string == before
    finally:
        with host.sudo():
            host.run("rm -f /etc/ansible/facts.d/sesdf_esus_migration.fact")
            host.run(f"mv /root/distribuido.zip.bak {ZIP}")


CENTRAL_FACT = "/etc/ansible/facts.d/sesdf_esus_central_profiles.fact"
CENTRAL_DUMP = (
    "runuser -u postgres -- $(ls /opt/e-SUS/database/postgresql-*/bin/pg_dump | head -1) -p 5433 --data-only "
    "-d esus_central"
)


@pytest.mark.nt("NT-apta-4")
def test_central_audit_names_what_the_central_server_lacks_for_the_apt_ubs(host):
    """GPMA's check after a migration: every professional of the UBS has the right profile on the central server."""
    if host.backend.get_hostname() != H455:
        pytest.skip("ubs455 is the UBS audited against the central server's stand-in")
    import xml.etree.ElementTree as ET

    root = ET.fromstring(host.file("/root/cnes.xml").content)  # noqa: S314 (the lab's own synthetic file)
    names = [
        p.get("NM_PROF")
        for p in root.iter("DADOS_PROFISSIONAIS")
        for lot in p.iter("DADOS_LOTACOES")
        if lot.get("CNES") == "0010001"
    ]
    state = host.file(CENTRAL_FACT)
    assert state.mode == 0o600 and state.user == "root"
    data = json.loads(state.content_string)["data"]
    assert data["checked"] and data["central"] == H452 and data["cnes"] == "0010001"
    assert data["lotacoes"] == len(names) - 2
    missing = sorted(m["nome"] for m in data["mismatches"] if m["tipo"] == "profissional_sem_lotacao_no_central")
    assert missing == sorted(names[-2:])
    assert [m["tipo"] for m in data["mismatches"]].count("perfil_nao_permitido_para_cbo") == 1
    assert len(data["mismatches"]) == 3
    cpfs = [p.get("CPF_PROF") for p in root.iter("DADOS_PROFISSIONAIS")]
    assert not any(cpf in state.content_string for cpf in cpfs), "no CPF in the state a report reads"


def test_central_audit_is_read_only_on_the_central_server(host):
    if host.backend.get_hostname() != H452:
        pytest.skip("ubs452 holds the central server's stand-in")
    grants = sql(
        host,
        "SELECT DISTINCT privilege_type FROM information_schema.role_table_grants WHERE grantee = 'leitura_central'",
        db="esus_central",
    )
    assert grants == [["SELECT"]], "the audit connects with a user that can only read"
    # check, converge and idempotence each audited the central database: its data is what prepare left
    dump = host.run(f"{CENTRAL_DUMP} | grep -Ev '^\\\\(un)?restrict ' | md5sum")
    assert dump.rc == 0 and dump.stdout == host.file("/root/central-after-prepare.md5").content_string


def test_a_cnes_layout_the_pec_cannot_read_is_refused_before_any_import(host):
    only(host, H452)
    with host.sudo():
        host.check_output(
            "python3 -c \"import zipfile; x = zipfile.ZipFile('" + ZIP + "').read('XmlParaESUS31_530010.xml');"
            " open('/root/cnes-3.1.xml', 'wb').write(x.replace(b'VERSAO_XSD=\\\"2.1\\\"', b'VERSAO_XSD=\\\"3.1\\\"'))\""
        )
    args = {"path": "/root/cnes-3.1.xml", "cnes": "0010002", "pec_version": "4.5.2"}
    refused = run_module(H452, "sesdf.esus.cnes_xml", args)
    assert refused["failed"] and "leiaute 3.1 do CNES, que o PEC 4.5.2 não lê" in refused["msg"]
    args["path"] = ZIP
    assert not run_module(H452, "sesdf.esus.cnes_xml", args)["failed"]  # the week's 2.1 file is read
