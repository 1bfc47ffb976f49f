"""The PEC 5.x web session and the CNES import over it (module_utils pec_web), against a real local HTTP server that
speaks the PEC's protocol (pec_web_fake): XSRF cookie and header, GraphQL login, the upload by internal município
id, the asynchronous status. Time is a fake clock: nothing here sleeps."""

from __future__ import annotations

import json
import socket
import zipfile

import pytest
from pec_web_fake import MUNICIPIO_ID, PASSWORD, STATUS_PATH, STATUS_QUERY, USER, FakePec, running

from ansible_collections.sesdf.esus.plugins.module_utils import pec_web
from ansible_collections.sesdf.esus.plugins.module_utils._redact import MASK
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake():
    with running() as server:
        yield server


@pytest.fixture
def cnes_zip(tmp_path):
    path = tmp_path / "XmlParaESUS31_530010.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cnes.xml", "<ImportarXMLCNES>\r\n\x00\xff bytes</ImportarXMLCNES>")
    return path


def params(fake, path, **extra):
    return {
        "base_url": fake.url,
        "api_path": pec_web.DEFAULT_API_PATH,
        "municipio_id": MUNICIPIO_ID,
        "path": str(path),
        "user": USER,
        "password": PASSWORD,
        "timeout": 10,
        "status_query": STATUS_QUERY,
        "status_path": STATUS_PATH,
        "status_failed": [],
        "status_interval": 5,
        "status_timeout": 60,
        **extra,
    }


def run_import(fake, path, **extra):
    clock = FakeClock()
    result = pec_web.import_cnes(params(fake, path, **extra), clock=clock, sleep=clock.sleep)
    return result, clock


def no_password_in(*values):
    text = json.dumps(values, default=str, ensure_ascii=False) + json.dumps(values, default=str)
    for form in (PASSWORD, json.dumps(PASSWORD)[1:-1], json.dumps(PASSWORD, ensure_ascii=False)[1:-1]):
        assert form not in text


# the session ---------------------------------------------------------------------------------------------------


def test_every_post_carries_the_current_xsrf_token_and_the_upload_the_one_rotated_at_login(fake, cnes_zip):
    result, _fake_log = run_import(fake, cnes_zip)
    assert result["verified"] is True
    posts = [entry for entry in fake.log if entry[0] == "POST"]
    assert posts and all(post[2] != 403 for post in posts)
    first, rotated = fake.issued[0], fake.issued[1]
    assert posts[0][3] == first, "the login carries the token GET / set"
    upload = fake.uploads[0]
    assert upload["xsrf"] == rotated != first, "the token rotated at login is read from the jar before the upload"
    assert upload["session"] in fake.sessions, "the upload runs in the session the login opened (JSESSIONID)"


def test_a_post_without_an_xsrf_token_is_refused_and_the_message_says_no_token_was_set(fake):
    session = pec_web.PecWebSession(fake.url, timeout=10)
    with pytest.raises(PecError) as refused:
        session.login(USER, PASSWORD)  # no GET / first: no XSRF-TOKEN cookie, no header
    assert "HTTP 403" in refused.value.msg and "never set an XSRF-TOKEN cookie" in refused.value.msg
    assert [entry[2] for entry in fake.log] == [403]


def test_a_wrong_xsrf_header_is_refused_403(fake):
    session = pec_web.PecWebSession(fake.url, timeout=10)
    session.start()
    status, _answer = session._send(
        "POST", "/api/graphql", b"{}", {"Content-Type": "application/json", "X-XSRF-TOKEN": "forged"}
    )
    assert status == 403


def test_a_403_that_brings_a_new_xsrf_token_is_sent_once_more_with_it(cnes_zip):
    fake = FakePec()
    fake.xsrf_on_get = False  # a deferred token: set only on the answer to a POST without one
    with running(fake):
        result, _fake_log = run_import(fake, cnes_zip)
    assert result["verified"] is True
    statuses = [entry[2] for entry in fake.log if entry[0] == "POST"]
    assert statuses[:2] == [403, 200], "the first POST is refused, then sent once with the token it brought"
    assert statuses.count(403) == 1 and len(fake.uploads) == 1


@pytest.mark.parametrize("refusal", ["false", "errors", 401, 403, "echo"])
def test_a_refused_login_names_the_user_variable_and_nothing_is_uploaded(refusal, cnes_zip):
    fake = FakePec()
    fake.login_refusal = refusal
    with running(fake), pytest.raises(PecError) as refused:
        run_import(fake, cnes_zip)
    assert "refused the login" in refused.value.msg and "cnes_import_api_user" in refused.value.msg
    assert USER not in refused.value.msg, "the login (a CPF) is not put in the message"
    no_password_in(refused.value.msg, str(refused.value), refused.value.details)
    assert fake.uploads == []


def test_a_wrong_password_is_refused(fake, cnes_zip):
    with pytest.raises(PecError, match="refused the login"):
        run_import(fake, cnes_zip, password="outra-senha")
    assert fake.uploads == []


def test_the_password_is_in_no_exception_text_nor_return_value(cnes_zip):
    fake = FakePec()
    with running(fake):
        result, _fake_log = run_import(fake, cnes_zip)
        no_password_in(result)
        fake.login_refusal = "echo"  # the server quotes the request (and the password) back in its error
        with pytest.raises(PecError) as refused:
            run_import(fake, cnes_zip)
    assert "Entrada inválida" in refused.value.msg and MASK in refused.value.msg
    no_password_in(refused.value.msg, repr(refused.value), refused.value.details)


def test_the_pec_not_answering_fails_saying_where_it_was_asked(cnes_zip):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PecError, match=r"does not answer at http://127\.0\.0\.1:\d+"):
        pec_web.import_cnes(params(FakePec(), cnes_zip, base_url=f"http://127.0.0.1:{port}"))


def test_an_answer_larger_than_the_bound_is_not_read_and_the_import_is_not_verifiable(cnes_zip):
    fake = FakePec()
    fake.big_status_answer = True
    with running(fake):
        result, _fake_log = run_import(fake, cnes_zip, status_timeout=10)
    assert result["verified"] is False and "larger than" in result["message"]
    assert len(fake.uploads) == 1


# the upload ----------------------------------------------------------------------------------------------------


def test_the_file_is_posted_byte_for_byte_as_the_multipart_field_file(fake, cnes_zip):
    result, _fake_log = run_import(fake, cnes_zip)
    upload = fake.uploads[0]
    assert upload["data"] == cnes_zip.read_bytes()
    assert upload["filename"] == cnes_zip.name and upload["content_type"] == "application/zip"
    assert upload["municipio"] == MUNICIPIO_ID
    assert result["response"] == {"unidades": 1, "equipes": 2, "profissionais": 5}


def test_an_unknown_municipio_is_refused_with_the_servers_message_and_the_variables_to_check(fake, cnes_zip):
    with pytest.raises(PecError) as refused:
        run_import(fake, cnes_zip, municipio_id="530010")
    msg = refused.value.msg
    assert "HTTP 400" in msg and "Município 530010 não encontrado" in msg
    assert "cnes_import_pec_municipio_id" in msg and "not the IBGE code" in msg
    assert fake.uploads == []


def test_a_lost_session_at_the_upload_is_said_as_such(fake, cnes_zip):
    session = pec_web.PecWebSession(fake.url, timeout=10)
    session.start()  # XSRF, but no login
    with pytest.raises(PecError, match=r"ended the session before the CNES upload \(HTTP 401\)"):
        session.upload(pec_web.DEFAULT_API_PATH, MUNICIPIO_ID, str(cnes_zip))


def test_options_that_cannot_work_are_refused_before_anything_is_sent(fake, cnes_zip):
    with pytest.raises(PecError, match="must start with / and hold"):
        run_import(fake, cnes_zip, api_path="/api/cnes/530010")
    with pytest.raises(PecError, match="cnes_import_pec_municipio_id or cnes_import_municipio_query"):
        run_import(fake, cnes_zip, municipio_id="")
    with pytest.raises(PecError, match="without cnes_import_status_path"):
        run_import(fake, cnes_zip, status_path="")
    with pytest.raises(PecError, match="not an http"):
        run_import(fake, cnes_zip, base_url="file:///etc/passwd")
    assert fake.log == []


# the asynchronous status ---------------------------------------------------------------------------------------


def test_the_import_is_followed_from_em_andamento_to_concluido(fake, cnes_zip):
    result, clock = run_import(fake, cnes_zip)
    assert result == {
        "verified": True,
        "status": "CONCLUIDO",
        "message": "importação do CNES concluída no PEC (situação CONCLUIDO)",
        "response": {"unidades": 1, "equipes": 2, "profissionais": 5},
    }
    assert clock.sleeps == [5], "EM_ANDAMENTO, one interval, then CONCLUIDO"
    assert fake.status_queries == 3, "one before the upload, two after"
    assert len(fake.uploads) == 1


def test_a_failing_status_fails_with_the_status_and_the_file_is_posted_once(cnes_zip):
    fake = FakePec()
    fake.progress = ["EM_ANDAMENTO", "EM_ANDAMENTO", "ERRO"]
    with running(fake), pytest.raises(PecError) as failed:
        run_import(fake, cnes_zip, status_failed=["ERRO"])
    assert "ended with status ERRO" in failed.value.msg
    assert failed.value.details["status"] == "ERRO" and failed.value.details["verified"] is False
    assert len(fake.uploads) == 1


def test_an_import_that_never_ends_is_not_verifiable_at_the_timeout(cnes_zip):
    fake = FakePec()
    fake.progress = ["EM_ANDAMENTO"]
    with running(fake):
        result, clock = run_import(fake, cnes_zip, status_timeout=30, status_interval=7)
    assert result["verified"] is False and result["status"] == "EM_ANDAMENTO"
    assert result["message"].startswith("importação enviada ao PEC; conclusão não verificável")
    assert "não chegou a CONCLUIDO em 30s (última: EM_ANDAMENTO)" in result["message"]
    assert "cnes_import_confirm_manual=true" in result["message"]
    assert clock.sleeps == [7, 7, 7, 7, 2] and clock.now == 1030.0
    assert len(fake.uploads) == 1


def test_a_status_path_that_does_not_resolve_is_not_verifiable(fake, cnes_zip):
    result, clock = run_import(fake, cnes_zip, status_path="data.importacoesCnes.itens.0.status")
    assert result["verified"] is False and result["status"] is None
    assert "o caminho 'data.importacoesCnes.itens.0.status' (cnes_import_status_path) não existe" in result["message"]
    assert clock.sleeps == [] and len(fake.uploads) == 1


def test_a_status_query_the_pec_rejects_is_not_verifiable_with_what_the_pec_said(fake, cnes_zip):
    result, _fake_log = run_import(fake, cnes_zip, status_query="query { outraCoisa }")
    assert result["verified"] is False and "Campo desconhecido" in result["message"]
    assert len(fake.uploads) == 1


def test_without_a_status_query_the_import_is_submitted_but_not_verifiable(fake, cnes_zip):
    result, _fake_log = run_import(fake, cnes_zip, status_query="", status_path="")
    assert result["verified"] is False and result["status"] is None
    assert "nenhuma consulta de situação configurada (cnes_import_status_query)" in result["message"]
    assert len(fake.uploads) == 1 and fake.status_queries == 0


def test_a_previous_concluded_import_is_never_taken_for_the_new_one(cnes_zip):
    fake = FakePec()
    fake.imports = [{"id": 900, "status": "CONCLUIDO"}]  # last week's import
    fake.listing_delay = 2  # the new one is listed only from the third status query after the upload
    with running(fake):
        result, clock = run_import(fake, cnes_zip)
    assert result["verified"] is True
    assert clock.sleeps == [5, 5, 5], "two answers still show last week's import, then EM_ANDAMENTO, then CONCLUIDO"
    assert fake.status_queries == 5


def test_a_new_import_never_listed_is_not_verifiable_even_when_the_last_one_concluded(cnes_zip):
    fake = FakePec()
    fake.imports = [{"id": 900, "status": "CONCLUIDO"}]
    fake.listing_delay = 10**6
    with running(fake):
        result, _fake_log = run_import(fake, cnes_zip, status_timeout=20)
    assert result["verified"] is False and "última: nenhuma" in result["message"]


# pieces --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.importacoesCnes.content.0.status", (True, "A")),
        ("data.importacoesCnes.content.1.status", (True, "B")),
        ("data.importacoesCnes.content.2.status", (False, None)),
        ("data.importacoesCnes.content.x.status", (False, None)),
        ("data.importacoesCnes.total", (True, 2)),
        ("data.nada", (False, None)),
    ],
)
def test_a_status_path_indexes_lists_by_its_numeric_parts(path, expected):
    answer = {"data": {"importacoesCnes": {"content": [{"status": "A"}, {"status": "B"}], "total": 2}}}
    assert pec_web.resolve_path(answer, path) == expected


def test_the_multipart_body_is_the_file_between_one_boundary():
    body, content_type = pec_web.multipart_file('a"b\r\n.xml', b"<x/>\r\n")
    boundary = content_type.split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"\r\n--{boundary}--\r\n".encode())
    assert b'filename="ab.xml"' in body and b"Content-Type: application/xml\r\n\r\n<x/>\r\n\r\n--" in body
