"""The cnes_import role's import step (tasks_from import) run by ansible-playbook on localhost against the fake PEC
5.x (module_utils/pec_web_fake.py): what it records in the CNES fact for each way out. An import the PEC reports
CONCLUIDO is imported; one whose end is not verifiable waits for the operator's confirmation and is never sent
again; without the PEC's internal município id the file is staged for the manual import, saying why."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "plugins", "module_utils"))

from pec_web_fake import MUNICIPIO_ID, PASSWORD, STATUS_PATH, STATUS_QUERY, USER, FakePec, running

from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CONTENT = b"<ImportarXMLCNES>sintetico</ImportarXMLCNES>"


@pytest.fixture
def site(tmp_path):
    """Directories of one run: the CNES file as fetched, the role's directories, Ansible's own (never ~/.ansible)."""
    fetched = tmp_path / "recebido" / "XmlParaESUS31_530010.xml"
    fetched.parent.mkdir()
    fetched.write_bytes(CONTENT)
    return {"root": tmp_path, "fetched": fetched, "fact": tmp_path / "facts" / "sesdf_esus_cnes.fact"}


def play(site, fake_url, version="5.5.28", module_defaults=None, check=False, **role_vars):
    """Run the import step once; (return code, output, the CNES fact after it or None)."""
    if not os.path.exists(os.path.join(REPO, "build", "collections", "ansible_collections", "sesdf", "esus")):
        pytest.fail("run `make collection` first (the unit target does)")
    root = site["root"]
    fact = site["fact"]
    state = json.loads(fact.read_text()) if fact.exists() else {"last_import": None, "pending_manual": None}
    data = {
        "sha256": hashlib.sha256(CONTENT).hexdigest(),
        "ibge": "530010",
        "xsd_version": "3.1",
        "professionals": [{"cbo": "225142"}],
    }
    extra = {
        "cnes_import_facts_dir": str(fact.parent),
        "cnes_import_dir": str(root / "cnes"),
        "cnes_import_cnes": "0010001",
        "sesdf_esus_ibge": "530010",
        "cnes_import_http_url": fake_url,
        "cnes_import_api_user": USER,
        "cnes_import_api_password": PASSWORD,
        "cnes_import_status_interval": 1,
        "cnes_import_status_timeout": 20,
        **role_vars,
    }
    playbook = root / f"play-{uuid.uuid4().hex[:6]}.yml"
    playbook.write_text(
        textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/sesdf.esus.pec: {json.dumps(module_defaults or {})}
          tasks:
            - ansible.builtin.set_fact:
                __cnes_import_version: {json.dumps(version)}
                __cnes_import_state: {json.dumps(state)}
                __cnes_import_fetched: {json.dumps(str(site["fetched"]))}
                cnes_import_data: {json.dumps(data)}
            - ansible.builtin.include_role:
                name: sesdf.esus.cnes_import
                tasks_from: import
        """)
    )
    home = root / "ansible-home"
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(home / "remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    extra_file = root / "extra.json"
    extra_file.write_text(json.dumps(extra))
    proc = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(playbook),
            "-e",
            f"@{extra_file}",
            *(["--check"] if check else []),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=root,
    )
    output = proc.stdout + proc.stderr
    assert PASSWORD not in output and json.dumps(PASSWORD)[1:-1] not in output
    return proc.returncode, output, (json.loads(fact.read_text()) if fact.exists() else None)


@pytest.mark.nt("NT-inapta-7")
def test_an_import_the_pec_reports_concluido_is_recorded_as_imported(site):
    with running() as fake:
        rc, out, fact = play(
            site,
            fake.url,
            cnes_import_pec_municipio_id=MUNICIPIO_ID,
            cnes_import_status_query=STATUS_QUERY,
            cnes_import_status_path=STATUS_PATH,
        )
    assert rc == 0, out
    assert "desativa toda unidade, equipe e lotação do município" in out
    assert fact["pending_manual"] is None
    last = fact["last_import"]
    assert last["method"] == "api" and last["verified"] is True and last["status"] == "CONCLUIDO"
    assert last["municipio_id"] == MUNICIPIO_ID and len(fake.uploads) == 1


def test_an_end_not_verifiable_waits_for_the_operator_is_never_sent_again_then_is_confirmed(site):
    with running() as fake:
        rc, out, fact = play(site, fake.url, cnes_import_pec_municipio_id=MUNICIPIO_ID)
        assert rc == 0, out
        assert "conclusão não verificável" in out
        assert fact["last_import"] is None, "never called imported"
        pending = fact["pending_manual"]
        assert pending["method"] == "api_nao_verificada" and "cnes_import_status_query" in pending["message"]

        rc, out, fact = play(site, fake.url, cnes_import_pec_municipio_id=MUNICIPIO_ID)
        assert rc == 0, out
        assert "CONFIRMAÇÃO DA IMPORTAÇÃO DO CNES PENDENTE" in out and "não é enviado de novo" in out
        assert len(fake.uploads) == 1 and fact["pending_manual"] == pending

        rc, out, fact = play(site, fake.url, cnes_import_pec_municipio_id=MUNICIPIO_ID, cnes_import_confirm_manual=True)
        assert rc == 0, out
    assert len(fake.uploads) == 1
    assert fact["pending_manual"] is None and fact["last_import"]["method"] == "api_confirmada"


def test_check_mode_asks_nothing_of_the_pec_and_records_nothing(site):
    with running() as fake:
        rc, out, fact = play(site, fake.url, check=True, cnes_import_pec_municipio_id=MUNICIPIO_ID)
    assert rc == 0, out
    assert "would import" in out and fake.log == [] and fact is None


def test_without_the_pecs_municipio_id_the_file_is_staged_saying_why(site):
    with running() as fake:
        rc, out, fact = play(site, fake.url)
    assert rc == 0, out
    why = "o id interno do município no PEC não é conhecido: defina cnes_import_pec_municipio_id ou"
    assert why in out and "IMPORTAÇÃO MANUAL DO CNES PENDENTE" in out
    assert fact["pending_manual"]["method"] == "manual" and why in fact["pending_manual"]["reason"]
    staged = site["root"] / "cnes" / "importacao-manual-pendente"
    assert (staged / site["fetched"].name).read_bytes() == CONTENT
    assert why in (staged / "AVISO-IMPORTACAO-CNES.txt").read_text()
    assert fake.log == [], "nothing was asked of the PEC"


def test_a_pec_without_the_api_stages_the_file_saying_its_version(site):
    with running() as fake:
        rc, out, fact = play(site, fake.url, version="4.5.2", cnes_import_pec_municipio_id=MUNICIPIO_ID)
    assert rc == 0, out
    assert "o PEC 4.5.2 não tem importação do CNES pela API" in fact["pending_manual"]["reason"]
    assert fake.log == []


def test_a_municipio_query_without_exactly_one_row_stages_the_file_naming_the_count(site, pg_server):
    conn = {k: pg_server[k] for k in ("host", "port", "user", "password")}
    name = "mun_" + uuid.uuid4().hex[:10]
    with PgClient(pg_server["bin_dir"], dict(conn, name="postgres")) as admin:
        admin.query(f"CREATE DATABASE {name}")
    try:
        with PgClient(pg_server["bin_dir"], dict(conn, name=name)) as client:
            client.query("CREATE TABLE tb_localidade (co_localidade_dbl bigint, co_ibge_dbl text)")
        pec = {
            "pg_bin_dir": pg_server["bin_dir"],
            "db_host": conn["host"],
            "db_port": conn["port"],
            "db_name": name,
            "db_user": conn["user"],
            "db_password": conn["password"],
        }
        query = "SELECT co_localidade_dbl FROM tb_localidade WHERE co_ibge_dbl = %(ibge)s"
        with running() as fake:
            rc, out, fact = play(site, fake.url, module_defaults=pec, cnes_import_municipio_query=query)
            assert rc == 0, out
            assert "devolveu 0 linhas (esperada 1) para o IBGE 5300108" in fact["pending_manual"]["reason"]
            assert fake.log == []
            with PgClient(pg_server["bin_dir"], dict(conn, name=name)) as client:
                client.query("INSERT INTO tb_localidade VALUES (5584, '5300108')")  # the fake's MUNICIPIO_ID
            rc, out, fact = play(site, fake.url, module_defaults=pec, cnes_import_municipio_query=query)
            assert rc == 0, out
            assert fake.uploads[0]["municipio"] == MUNICIPIO_ID
            assert fact["pending_manual"]["method"] == "api_nao_verificada"
    finally:
        with PgClient(pg_server["bin_dir"], dict(conn, name="postgres")) as admin:
            admin.query(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_refused_login_fails_the_run_with_the_pecs_reason_and_records_nothing(site):
    fake = FakePec()
    fake.login_refusal = "errors"
    with running(fake):
        rc, out, fact = play(site, fake.url, cnes_import_pec_municipio_id=MUNICIPIO_ID)
    assert rc != 0 and "the PEC refused the login (Usuário ou senha inválidos)" in out
    assert USER not in out
    assert fact is None and fake.uploads == []
