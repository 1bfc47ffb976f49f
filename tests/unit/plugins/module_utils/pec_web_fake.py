"""A fake PEC 5.x web application on a real local HTTP server, speaking the protocol module_utils pec_web talks
(docs/pec-facts.md, "CNES on 5.x"): XSRF-TOKEN cookie set on GET / (and, like Spring, on any answer to a client
without one when ``xsrf_on_get`` is off), every POST checked against it (403), GraphQL login with the inline input,
a new JSESSIONID (HttpOnly) and a rotated XSRF token after it, the CNES upload by internal município id (400 for
an unknown one) and an asynchronous import whose status the query ``importacoesCnes`` shows, newest first.

Synthetic data only: a fake administrator login and password."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import re
import secrets
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER = "00000000191"
PASSWORD = 'Senha"Sintética\\do-Lab-1'  # a quote, a backslash and a non-ASCII letter: every escaping form
MUNICIPIO_ID = "5584"
STATUS_QUERY = "query { importacoesCnes { content { id status } } }"
STATUS_PATH = "data.importacoesCnes.content.0.status"
_LOGIN = re.compile(r'login\(input: \{username: ("(?:[^"\\]|\\.)*"), password: ("(?:[^"\\]|\\.)*"), force: true\}\)')


class FakePec:
    """State and behaviour switches of the fake; ``url`` once started."""

    def __init__(self):
        self.url = None
        self.lock = threading.Lock()
        self.xsrf_on_get = True  # False: the token is only set on an answer to a POST without one (deferred tokens)
        self.rotate_xsrf_on_login = True
        self.login_refusal = None  # None, "false", "errors", "echo", 401 or 403
        self.municipios = {MUNICIPIO_ID}
        self.imports = []  # newest first: {"id", "status"}
        self.progress = ["EM_ANDAMENTO", "CONCLUIDO"]  # statuses the new import goes through, one per status query
        self.listing_delay = 0  # status queries after the upload that do not list the new import yet
        self.big_status_answer = False
        self.xsrf_tokens = set()
        self.sessions = set()
        self.log = []  # (method, path, status, xsrf header, session cookie)
        self.uploads = []  # {"municipio", "filename", "content_type", "data", "xsrf"}
        self.status_queries = 0
        self.issued = []  # XSRF tokens in the order they were set
        self.ours = []  # the imports the uploads created
        self._queries_since_upload = 0

    # helpers used by the handler --------------------------------------------------------------------------------

    def new_xsrf(self):
        token = secrets.token_hex(8)
        self.xsrf_tokens.add(token)
        self.issued.append(token)
        return token

    def status_answer(self):
        with self.lock:
            self.status_queries += 1
            hidden = None
            if self.ours:
                self._queries_since_upload += 1
                shown = self._queries_since_upload - self.listing_delay
                if shown > 0:
                    self.ours[-1]["status"] = self.progress[min(shown, len(self.progress)) - 1]
                else:
                    hidden = self.ours[-1]
            content = [dict(i) for i in self.imports if i is not hidden]
        answer = {"data": {"importacoesCnes": {"content": content}}}
        if self.big_status_answer:
            answer["padding"] = "x" * (2 * 1024 * 1024)
        return answer

    def record_upload(self, upload):
        with self.lock:
            self.uploads.append(upload)
            new = {"id": 1000 + len(self.uploads), "status": self.progress[0]}
            self.imports.insert(0, new)
            self.ours.append(new)
            self._queries_since_upload = 0


def _handler(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args):
            pass

        def _cookies(self):
            jar = SimpleCookie()
            with contextlib.suppress(Exception):
                jar.load(self.headers.get("Cookie", ""))
            return {k: v.value for k, v in jar.items()}

        def _answer(self, status, body=b"", content_type="application/json", cookies=()):
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            # logged before the answer is written: the client may read it before this thread goes on
            fake.log.append(
                (self.command, self.path, status, self.headers.get("X-XSRF-TOKEN"), self._cookies().get("JSESSIONID"))
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for cookie in cookies:
                self.send_header("Set-Cookie", cookie)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            cookies = self._cookies()
            set_cookies = []
            if fake.xsrf_on_get and cookies.get("XSRF-TOKEN") not in fake.xsrf_tokens:
                set_cookies.append(f"XSRF-TOKEN={fake.new_xsrf()}; Path=/")
            self._answer(200, b"<html>PEC</html>", "text/html", set_cookies)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            cookies = self._cookies()
            token = cookies.get("XSRF-TOKEN")
            header = self.headers.get("X-XSRF-TOKEN")
            if not token or token not in fake.xsrf_tokens or header != token:
                renew = [] if token in fake.xsrf_tokens else [f"XSRF-TOKEN={fake.new_xsrf()}; Path=/"]
                self._answer(403, {"message": "Forbidden"}, cookies=renew if not fake.xsrf_on_get else [])
                return
            session = cookies.get("JSESSIONID")
            if self.path == "/api/graphql":
                self._graphql(json.loads(body)["query"], session)
            elif self.path.startswith("/api/cnes/"):
                self._upload(self.path[len("/api/cnes/") :], body, session, header)
            else:
                self._answer(404, {"message": "Not Found"})

        def _graphql(self, query, session):
            if query.startswith("mutation"):
                found = _LOGIN.search(query)
                user, password = (json.loads(found.group(1)), json.loads(found.group(2))) if found else (None, None)
                refusal = fake.login_refusal
                if refusal is None and (user, password) != (USER, PASSWORD):
                    refusal = "false"
                if refusal in (401, 403):
                    self._answer(refusal, {"message": "Não autorizado"})
                elif refusal == "false":
                    self._answer(200, {"data": {"login": {"success": False}}})
                elif refusal == "errors":
                    self._answer(200, {"data": {"login": None}, "errors": [{"message": "Usuário ou senha inválidos"}]})
                elif refusal == "echo":  # a careless server that quotes the request back
                    said = f"Entrada inválida: {query} (senha {password})"
                    self._answer(200, {"data": {"login": None}, "errors": [{"message": said}]})
                else:
                    new_session = secrets.token_hex(8)
                    fake.sessions.add(new_session)
                    set_cookies = [f"JSESSIONID={new_session}; Path=/; HttpOnly"]
                    if fake.rotate_xsrf_on_login:
                        set_cookies.append(f"XSRF-TOKEN={fake.new_xsrf()}; Path=/")
                    self._answer(200, {"data": {"login": {"success": True}}}, cookies=set_cookies)
                return
            if session not in fake.sessions:
                self._answer(401, {"message": "Não autorizado"})
                return
            if "importacoesCnes" in query:
                self._answer(200, fake.status_answer())
            else:
                self._answer(200, {"data": None, "errors": [{"message": "Campo desconhecido"}]})

        def _upload(self, municipio, body, session, xsrf):
            if session not in fake.sessions:
                self._answer(401, {"message": "Sessão expirada"})
                return
            if municipio not in fake.municipios:
                self._answer(400, {"message": f"Município {municipio} não encontrado"})
                return
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
            )
            parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
            if len(parts) != 1:
                self._answer(400, {"message": "Arquivo ausente"})
                return
            part = parts[0]
            fake.record_upload(
                {
                    "municipio": municipio,
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "data": part.get_payload(decode=True),
                    "xsrf": xsrf,
                    "session": session,
                }
            )
            self._answer(200, {"unidades": 1, "equipes": 2, "profissionais": 5})

    return Handler


@contextlib.contextmanager
def running(fake=None):
    """A started FakePec (``fake.url``), stopped at the end."""
    fake = fake or FakePec()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
