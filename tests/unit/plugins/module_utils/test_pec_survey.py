# ruff: noqa: S608 (SQL built from the test's own constants)
"""pec_survey against a real PostgreSQL with the PEC double's schema, in the old shape and in the real servers'
shape: what the bundle holds, and that no patient data, configuration value, password or hostname gets into it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import stat

import pytest
from survey_helpers import CANARY, PG_DIR, make_tree, pec_http, survey_params

from ansible_collections.sesdf.esus.plugins.module_utils.pec_capability import capability_profile
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient
from ansible_collections.sesdf.esus.plugins.module_utils.pec_survey import (
    HTTP_PATHS,
    TRANSMISSION_TABLES,
    _ReadOnlyClient,
    find_lote_files,
    gather,
    installer_help,
    parse_proc_net_tcp,
    scrub,
    survey_tables,
)

TOP_LEVEL = {
    "format",
    "surveyed_at",
    "host_fingerprint",
    "pec",
    "http",
    "ports",
    "installer_help",
    "config_keys",
    "schema",
    "reference",
    "files",
    "errors",
}


def alter(pg_server, conn, sql):
    with PgClient(pg_server["bin_dir"], conn) as client:
        client.query(sql)


def fake_java(tmp_path, lines):
    """A `java` that prints ``lines`` whatever it is asked (the installer's -help as a real one might print it)."""
    path = tmp_path / "bin" / "java"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + "".join(f"printf '%s\\n' '{line}'\n" for line in lines))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def survey(pg_server, conn, tmp_path, hostname="ubs-teste.saude.example", http=None, **over):
    root = tmp_path / "opt"
    if not root.exists():
        make_tree(root, conn, pg_server["bin_dir"])
    return gather(survey_params(root, **over), hostname, http_get_fn=http or pec_http())


def test_the_canary_is_nowhere_in_the_bundle_nor_in_the_profile(pg_server, pec_strict_db, tmp_path):
    """One string in a patient's name, a tb_config_sistema value, /etc/pec.config's databasePassword,
    credenciais.txt's passwords, a destination node's token, the version endpoint's other fields, the installer's
    output and the hostname: the bundle and the profile hold it nowhere."""
    alter(
        pg_server,
        pec_strict_db,
        f"UPDATE tb_cidadao SET no_cidadao = '{CANARY}' WHERE co_seq_cidadao = 1;"
        f"UPDATE tb_config_sistema SET ds_texto = 'http://{CANARY}:8080' WHERE co_config_sistema = 'LINKINSTALACAO';"
        f"UPDATE tb_nodo SET ds_token = '{CANARY}'",
    )
    root = make_tree(
        tmp_path / "opt", pec_strict_db, pg_server["bin_dir"], config_password=CANARY, credentials_password=CANARY
    )
    lotes = root / "webserver" / "lotes"
    lotes.mkdir()
    (lotes / "lote-1.zip").write_bytes(b"PK")
    hostname = f"{CANARY}.saude.df.example"
    (root / "webserver" / f"copia-{CANARY}.zip").write_bytes(b"PK")
    java = fake_java(
        tmp_path,
        [
            "Uso: java -jar eSUS-AB-PEC.jar [-console] [-continue] [-url= -username= -password=] [-help]",
            f"conectando em jdbc:postgresql://localhost:5433/esus com -password={CANARY}",
            f"Senha: {CANARY}",
            f"servidor {hostname}",
        ],
    )
    installer = tmp_path / "eSUS-AB-PEC-4.5.2-Linux64.jar"
    installer.write_bytes(b"PK")
    http = pec_http(extra={"nomeInstalacao": CANARY, "link": f"http://{CANARY}"})
    bundle, executed = gather(
        survey_params(root, installer=str(installer), java_bin=str(java)), hostname, http_get_fn=http
    )
    text = json.dumps(bundle, ensure_ascii=False)
    profile = json.dumps(capability_profile(bundle), ensure_ascii=False)
    assert CANARY not in text and CANARY not in profile
    assert CANARY.lower() not in text.lower()
    assert len(text.encode("utf-8")) < 1024 * 1024
    assert set(bundle) == TOP_LEVEL and bundle["errors"] == [], bundle["errors"]
    # what was surveyed is there, only without the canary
    assert "-console" in bundle["installer_help"]["output"] and "********" in bundle["installer_help"]["output"]
    assert "databasePassword" in bundle["config_keys"]["pec_config"]
    assert "LINKINSTALACAO" in bundle["reference"]["config_sistema_keys"]
    assert "webserver/copia-********.zip" in [f["path"] for f in bundle["files"]["listed"]]
    assert bundle["host_fingerprint"] == hashlib.sha256(hostname.encode()).hexdigest()
    assert executed and all(q.lstrip().upper().startswith("SELECT") for q in executed), "the survey only reads"
    assert not any("tb_cidadao" in q for q in executed), "no patient table is read"


def test_the_hostname_is_masked_even_where_it_is_no_secret(pg_server, pec_db, tmp_path):
    root = make_tree(tmp_path / "opt", pec_db, pg_server["bin_dir"])
    (root / "webserver" / "ubs-sobradinho-2.zip").write_bytes(b"PK")
    java = fake_java(tmp_path, ["Servidor: ubs-sobradinho-2.saude.example", "-help"])
    installer = tmp_path / "i.jar"
    installer.write_bytes(b"PK")
    bundle, _executed = gather(
        survey_params(root, installer=str(installer), java_bin=str(java)),
        "ubs-sobradinho-2.saude.example",
        http_get_fn=pec_http(),
    )
    text = json.dumps(bundle)
    assert "sobradinho" not in text
    assert bundle["installer_help"]["output"].startswith("Servidor: ********")


def test_identifier_shaped_digits_are_replaced_wherever_they_come_from():
    scrubbed = scrub({"a": ["CPF 123.456.789-09", "CNS 898001160660816", "CNES 0010001"], "12345678901": 1})
    assert scrubbed == {"a": ["CPF [number]", "CNS [number]", "CNES 0010001"], "[number]": 1}


def test_the_old_shape_describes_every_table_and_records_the_new_ones_absent(pg_server, pec_db, tmp_path):
    alter(
        pg_server,
        pec_db,
        "ANALYZE tb_unidade_saude; INSERT INTO tb_unidade_saude (nu_cnes, no_unidade_saude,"
        " co_ibge_municipio) SELECT lpad(g::text, 7, '9'), 'UBS ' || g, '530010' FROM generate_series(1, 40) g",
    )
    bundle, _executed = survey(pg_server, pec_db, tmp_path)
    schema = bundle["schema"]
    assert set(schema) == set(survey_tables())
    lote = schema["tb_lote_transp"]
    assert lote["columns"]["dt_envio"] == {"type": "timestamp without time zone", "nullable": True}
    assert lote["columns"]["co_situacao"] == {"type": "integer", "nullable": False}
    assert lote["primary_key"] == ["co_seq_lote_transp"]
    assert {
        "columns": ["co_situacao"],
        "references": "tb_situacao_lote_transp",
        "referenced_columns": ["co_situacao"],
    } in lote["foreign_keys"]
    assert schema["rl_ator_papel_perfil"]["primary_key"] == ["co_ator_papel", "co_perfil"]
    assert schema["tb_unidade_saude"]["approx_rows"] == 2, "the catalog's estimate, not a count (42 rows now)"
    for table in ("tb_nodo", "tb_lote_transp_nodo", "tb_situacao_lote_transp_nodo", "tb_localidade"):
        assert schema[table] is None
    assert bundle["reference"]["tb_nodo"] is None and bundle["reference"]["tb_situacao_lote_transp_nodo"] is None
    assert bundle["reference"]["tb_situacao_lote_transp"] == {
        "columns": ["co_situacao", "no_situacao"],
        "rows": [["1", "GERADO"], ["2", "ENVIADO"], ["3", "ERRO_ENVIO"]],
        "truncated": False,
    }
    assert bundle["reference"]["transmission_tables"] == ["tb_dado_transp", "tb_lote_transp", "tb_situacao_lote_transp"]
    assert "TRANSMISSAO_AUTOMATICA" in bundle["reference"]["config_sistema_keys"]
    assert bundle["errors"] == [], "an absent table is a finding, not an error"
    assert bundle["pec"]["versions"]["database"] == "4.2.8" and bundle["pec"]["pg_bin_dir"] == PG_DIR


def test_the_real_shape_gives_nodes_without_their_secrets_and_the_node_situations(pg_server, pec_strict_db, tmp_path):
    alter(
        pg_server, pec_strict_db, "CREATE TABLE tb_lote_transp_extra (co integer); CREATE TABLE tb_envio_fila (x int)"
    )
    bundle, _executed = survey(pg_server, pec_strict_db, tmp_path, reference_row_limit=2)
    reference = bundle["reference"]
    assert reference["tb_nodo"]["columns"] == ["co_seq_nodo", "no_nodo", "co_tipo_nodo"], "no_*/co_* only"
    assert [r[1] for r in reference["tb_nodo"]["rows"]] == ["Centralizador Nacional", "Centralizadora Municipal"]
    assert reference["tb_situacao_lote_transp_nodo"]["rows"] == [["1", "PENDENTE"], ["2", "ENVIADO"]]
    assert reference["tb_situacao_lote_transp_nodo"]["truncated"] is True
    assert reference["tb_situacao_lote_transp"] is None and bundle["schema"]["tb_situacao_lote_transp"] is None
    assert {"tb_lote_transp_extra", "tb_envio_fila", "tb_lote_transp_nodo"} <= set(reference["transmission_tables"])
    assert "tb_lote_transp_extra" not in bundle["schema"], "listed by name, not described"
    assert "TRANSMISSAO_AUTOMATICA" not in reference["config_sistema_keys"]
    assert bundle["schema"]["tb_lote_transp_item_nodo"]["primary_key"] == ["co_lote_transp_item", "co_nodo"]
    assert bundle["errors"] == []


def test_extra_tables_are_described_but_never_read(pg_server, pec_db, tmp_path):
    bundle, executed = survey(pg_server, pec_db, tmp_path, extra_tables=["tb_cidadao"])
    assert bundle["schema"]["tb_cidadao"]["columns"]["no_cidadao"]["type"] == "character varying"
    assert "Paciente Sintético" not in json.dumps(bundle)
    assert not any("FROM tb_cidadao" in q or 'FROM "tb_cidadao"' in q for q in executed)


def test_a_database_that_is_down_gives_an_error_and_the_rest_of_the_bundle(pg_server, pec_db, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = dict(pec_db, port=closed)
    root = make_tree(tmp_path / "opt", down, pg_server["bin_dir"])
    (root / "webserver" / "lotes").mkdir()
    (root / "webserver" / "lotes" / "lote-1.zip").write_bytes(b"PK")
    bundle, executed = gather(survey_params(root), "ubs-teste", http_get_fn=pec_http("4.5.2"))
    assert set(bundle) == TOP_LEVEL and len(executed) == 1
    (error,) = bundle["errors"]
    assert error["probe"] == "database" and "not accepting connections" in error["msg"]
    assert bundle["schema"] == {} and bundle["reference"] == {} and bundle["pec"]["database"]["reachable"] is False
    assert bundle["pec"]["version"] == "4.5.2", "the config and the endpoint still tell the version"
    assert bundle["http"]["versao"] == "4.5.2" and bundle["files"]["count"] == 1
    assert bundle["config_keys"]["application_properties"] and isinstance(bundle["ports"], list)
    assert capability_profile(bundle)["database_surveyed"] is False


def test_a_failing_probe_is_an_error_and_the_next_probes_run(pg_server, pec_db, tmp_path):
    alter(
        pg_server,
        pec_db,
        "ALTER TABLE tb_config_sistema RENAME TO tb_config_x; CREATE VIEW tb_config_sistema AS"
        " SELECT co_config_sistema, (1 / (length(ds_texto) - length(ds_texto)))::text AS ds_texto FROM tb_config_x",
    )
    bundle, _executed = survey(pg_server, pec_db, tmp_path)
    probes = [e["probe"] for e in bundle["errors"]]
    assert probes == ["database_version"], bundle["errors"]
    assert "division by zero" in bundle["errors"][0]["msg"]
    assert bundle["reference"]["config_sistema_keys"], "the probes after the failed one ran"
    assert bundle["schema"]["tb_lote_transp"] is not None


def test_a_column_name_with_a_quote_is_read_as_a_column(pg_server, pec_db, tmp_path):
    alter(pg_server, pec_db, 'ALTER TABLE tb_situacao_lote_transp RENAME COLUMN no_situacao TO "no""sit"')
    bundle, _executed = survey(pg_server, pec_db, tmp_path)
    situations = bundle["reference"]["tb_situacao_lote_transp"]
    assert situations["columns"] == ["co_situacao", 'no"sit'] and situations["rows"][0] == ["1", "GERADO"]


def test_the_survey_session_cannot_write(pg_server, pec_db):
    with _ReadOnlyClient(pg_server["bin_dir"], pec_db, session=True) as client:
        with pytest.raises(PecError, match="read-only transaction"):
            client.query("CREATE TABLE tb_escrita (x int)")
        assert client.query("SELECT 1") == [["1"]], "a new session after the refusal"
        with pytest.raises(PecError, match="read-only transaction"):
            client.query("UPDATE tb_config_sistema SET ds_texto = 'x'")


def test_http_keeps_status_and_content_type_and_only_the_versao(pg_server, pec_db, tmp_path):
    asked = []

    def get(url, timeout, read_body=False):
        asked.append((url, read_body))
        return pec_http("5.5.28", {"outro": "valor"})(url, timeout, read_body)

    ssl = tmp_path / "opt" / "webserver" / "certmgr" / "config"
    make_tree(tmp_path / "opt", pec_db, pg_server["bin_dir"])
    ssl.mkdir(parents=True)
    (ssl / "ssl.properties").write_text("server.ssl.key-store-password=segredo-do-certificado\ncert.domain=x\n")
    bundle, _executed = survey(pg_server, pec_db, tmp_path, http=get)
    http = bundle["http"]
    assert http["certmgr"] is True and http["base_url"] == "https://127.0.0.1:443"
    assert list(http["targets"]) == ["http://127.0.0.1:8080", "https://127.0.0.1:443"]
    answers = http["targets"]["https://127.0.0.1:443"]
    assert list(answers) == list(HTTP_PATHS)
    assert answers["/esus/"] == {"status": 401, "content_type": None}
    assert answers["/api/public/info"] == {"status": 200, "content_type": "application/json", "versao": "5.5.28"}
    assert [u for u, body in asked if body] == [
        "http://127.0.0.1:8080/api/public/info",
        "https://127.0.0.1:443/api/public/info",
    ], "only the version endpoint's body is read"
    assert "valor" not in json.dumps(bundle) and "segredo-do-certificado" not in json.dumps(bundle)
    assert bundle["config_keys"]["certmgr"] == ["cert.domain", "server.ssl.key-store-password"]


def test_an_endpoint_that_does_not_answer_is_an_error_per_url(pg_server, pec_db, tmp_path):
    def down(url, _timeout, _read_body=False):
        raise OSError("connection refused")

    bundle, _executed = survey(pg_server, pec_db, tmp_path, http=down)
    (error,) = bundle["errors"]
    assert error["probe"] == "http" and "http://127.0.0.1:8080: no answer on /, /esus/" in error["msg"]
    assert bundle["http"]["targets"]["http://127.0.0.1:8080"]["/"]["error"] == "OSError: connection refused"


def test_listening_ports_are_read_from_proc_without_naming_addresses():
    tcp = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1539 00000000:0000 0A 00000000:00000000 00:00000000 00000000   112        0 1 1\n"
        "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1\n"
        "   2: 0F02000A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1\n"
        "   3: 0100007F:1539 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   112        0 4 1\n"
    )
    tcp6 = (
        "  sl  local_address                         remote_address                        st\n"
        "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0 0 0 0\n"
        "   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0 0 0 0\n"
        "   2: 0000000000000000FFFF00000100007F:01BB 00000000000000000000000000000000:0000 0A 0 0 0 0\n"
    )
    assert parse_proc_net_tcp(tcp, "ipv4") == [
        {"port": 5433, "family": "ipv4", "bind": "loopback"},
        {"port": 22, "family": "ipv4", "bind": "any"},
        {"port": 8080, "family": "ipv4", "bind": "host"},
    ]
    assert parse_proc_net_tcp(tcp6, "ipv6") == [
        {"port": 8080, "family": "ipv6", "bind": "any"},
        {"port": 80, "family": "ipv6", "bind": "loopback"},
        {"port": 443, "family": "ipv6", "bind": "loopback"},
    ]


def test_lote_like_files_are_listed_bounded_with_a_total(tmp_path):
    root = tmp_path / "opt"
    ras = root / "webserver" / "downloads" / "RAS_Lote12_01-12-2026--00-00"
    ras.mkdir(parents=True)
    for i in range(5):
        (ras / f"0010001-{i:08d}-0000-0000-0000-000000000000.esus").write_bytes(b"x" * i)
    (root / "webserver" / "lote-9.zip").write_bytes(b"PK")
    (root / "database").mkdir()
    (root / "database" / "ignorado.zip").write_bytes(b"PK")  # a zip outside webserver/ is not a lote
    (root / "webserver" / "link.esus").symlink_to("/etc/hostname")
    files = find_lote_files(str(root), limit=3)
    assert files["count"] == 8 and files["by_kind"] == {"esus": 6, "ras_lote": 1, "zip": 1}
    assert files["truncated"] is True and len(files["listed"]) == 3
    listed = files["listed"]
    assert [f["path"] for f in listed] == [
        os.path.join("webserver", "link.esus"),
        os.path.join("webserver", "lote-9.zip"),
        os.path.join("webserver", "downloads", "RAS_Lote12_01-12-2026--00-00"),
    ], "walked top-down in name order; a link is listed, never followed"
    assert listed[1]["kind"] == "zip" and listed[1]["size"] == 2 and listed[1]["mtime"].endswith("Z")
    assert listed[2]["kind"] == "ras_lote" and listed[2]["size"] is None
    assert set(listed[0]) == {"path", "kind", "size", "mtime"}


def test_the_installer_help_is_redacted_before_it_is_cut(tmp_path):
    long = "x" * 30
    java = fake_java(tmp_path, [long, "-password=segredo-longo-demais"])
    out = installer_help("/srv/i.jar", str(java), 10, 40, secrets=["segredo-longo-demais"])
    assert out["rc"] == 0 and out["truncated"] is True and out["output_chars"] > 40
    assert out["output"] == long + "\n-password" and "segredo" not in json.dumps(out)


def test_an_installer_that_hangs_is_cut_by_the_timeout(tmp_path):
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\necho 'Uso: -console -continue'\nexec sleep 30\n")
    java.chmod(0o755)
    out = installer_help("/srv/i.jar", str(java), 1, 4096)
    assert out["timed_out"] is True and out["rc"] is None


def test_the_transmission_tables_are_all_surveyed():
    assert set(TRANSMISSION_TABLES) <= set(survey_tables())
    assert {"tb_migracao_trava", "tb_localidade", "tb_recurso"} <= set(survey_tables())
    assert {"ta_lotacao", "ta_ator_papel", "ta_ator_papel_perfil"} <= set(survey_tables())


def test_on_the_5_5_schema_the_localidade_and_audit_tables_are_described_by_their_columns_only(
    pg_server, pec_double, tmp_path
):
    conn = pec_double.create("5.5.28")
    alter(pg_server, conn, "UPDATE tb_lotacao SET st_ativo = 0 WHERE co_ator_papel = 1")  # one audited row
    bundle, executed = survey(pg_server, conn, tmp_path)
    schema, reference = bundle["schema"], bundle["reference"]
    assert set(schema["tb_localidade"]["columns"]) == {"co_localidade", "no_localidade_dbl", "co_ibge_dbl"}
    assert "co_localidade" in schema["tb_adm_municipal"]["columns"]
    assert schema["tb_perfil"]["columns"]["situation"] == {"type": "integer", "nullable": False}
    assert {"dt_auditoria_dbl", "tp_operacao_dbl", "co_prof"} <= set(schema["ta_lotacao"]["columns"])
    assert schema["ta_ator_papel_perfil"] is not None and schema["tb_recurso"] is None
    assert reference["audit_tables"] == ["ta_ator_papel", "ta_ator_papel_perfil", "ta_lotacao"]
    assert not {"tb_localidade", "ta_lotacao", "ta_ator_papel", "ta_ator_papel_perfil"} & set(reference)
    assert not [q for q in executed if re.search(r'FROM\s+"?(ta_|tb_localidade)', q)], "no row of them is read"
    assert bundle["errors"] == [], bundle["errors"]


@pytest.mark.parametrize("check", [True, False])
def test_the_module_changes_nothing_and_returns_the_bundle(pg_server, pec_db, run_module, tmp_path, check):
    root = make_tree(tmp_path / "opt", pec_db, pg_server["bin_dir"])
    proc, out = run_module(
        "pec_survey",
        pec_db,
        check=check,
        pec_root=str(root),
        pec_config_path=str(root / "pec.config"),
        facts_dir=str(tmp_path / "facts"),
        http_url="http://127.0.0.1:9",
        http_timeout=1,
    )
    assert proc.returncode == 0, proc.stderr
    assert out["changed"] is False and set(out["bundle"]) == TOP_LEVEL
    assert out["bundle"]["schema"]["tb_lote_transp"]["primary_key"] == ["co_seq_lote_transp"]
    assert out["bundle"]["host_fingerprint"] == hashlib.sha256(socket.gethostname().encode()).hexdigest()
    assert pec_db["password"] not in json.dumps(out)
