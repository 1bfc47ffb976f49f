# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A web session with the PEC 5.x application, as its own browser front end opens one, and the CNES import over it.

The protocol (docs/pec-facts.md, third review, "CNES on 5.x"):

- ``GET {base}/`` gives the ``XSRF-TOKEN`` cookie (Spring's cookie CSRF repository; any answer may set it again);
- every POST carries the header ``X-XSRF-TOKEN`` with the cookie's current value, read from the jar right before
  the POST (a missing or wrong one is answered 403; when a 403 comes with a new token, the POST is sent once more
  with it: such a POST was refused before the application saw it);
- ``POST {base}/api/graphql`` with the ``login`` mutation (inline input, the form public code uses against real
  servers) opens the session (``JSESSIONID``, HttpOnly);
- ``POST {base}/api/cnes/{municipioId}``, multipart field ``file``, submits the import: ``municipioId`` is the PEC's
  internal id of the município (a ``tb_localidade`` row), not its IBGE code; the import then runs asynchronously;
- the GraphQL query ``importacoesCnes`` shows its progress; ``CONCLUIDO`` is the only status attested. Its arguments
  and the shape of its answer are not public, so the query and the path to the newest import's status are given
  by IT (role variables); without them, or when the answer does not have that path, or when the import has not
  concluded before the timeout, the import was submitted but its end is **not verifiable**, and that is what is
  returned, never "imported".

Nothing is posted twice after the PEC accepted the file. No logout (unknown on real servers). Answers are read up to
:data:`MAX_RESPONSE_BYTES`; no proxy is used and the certificate of an HTTPS base URL is not validated: the PEC is
asked from the server itself (loopback), and a certmgr install's certificate is for its public name. The password
and the login (a CPF) are never put in a message or a return value (text the PEC sends back is scrubbed of them).
Standard library only.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from ansible_collections.sesdf.esus.plugins.module_utils._redact import redact
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
SMALL_JSON_BYTES = 4096
MESSAGE_CHARS = 300
XSRF_COOKIE = "XSRF-TOKEN"
XSRF_HEADER = "X-XSRF-TOKEN"
GRAPHQL_PATH = "/api/graphql"
DEFAULT_API_PATH = "/api/cnes/{municipio}"
CONCLUIDO = "CONCLUIDO"
CREDENTIALS = "cnes_import_api_user / cnes_import_api_password"
CONFIRM = "confira no PEC, menu CNES, e confirme com cnes_import_confirm_manual=true"


def not_verifiable(why):
    """The message of an import the PEC accepted whose end the collection cannot see (Portuguese: the operator
    acts on it)."""
    return f"importação enviada ao PEC; conclusão não verificável ({why}) — {CONFIRM}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (its status is reported), never followed: a POST must not turn into a GET."""

    def redirect_request(self, *_args, **_kwargs):
        return None


def _read_bounded(response, limit=MAX_RESPONSE_BYTES):
    data = response.read(limit + 1)
    if len(data) > limit:
        raise PecError(f"the PEC's answer is larger than {limit} bytes; refusing to read it")
    return data


def _json(data):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def resolve_path(answer, path):
    """(found, value) at a dotted ``path`` in a JSON value: each part a key of an object, or, when it is a
    number, an index of a list."""
    node = answer
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def _parent(path):
    return path.rpartition(".")[0]


class PecWebSession:
    """A cookie-jar session with one PEC (``base_url``, e.g. ``http://127.0.0.1:8080``).

    ``secrets``: strings masked in any text of the PEC put in a message (the password, the login)."""

    def __init__(self, base_url, timeout=60, secrets=()):
        parts = urllib.parse.urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise PecError(f"the PEC base URL {base_url!r} is not an http(s) URL like http://127.0.0.1:8080")
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(self.jar),
            _NoRedirect(),
        )
        self._secrets = [s for s in secrets if s]

    # plumbing ---------------------------------------------------------------------------------------------------

    def cookie(self, name):
        """The current value of cookie ``name`` in the jar (the last one set), or None."""
        value = None
        for item in self.jar:
            if item.name == name:
                value = item.value
        return value

    def scrub(self, text):
        """``text`` (from the PEC) without the secrets (module_utils _redact, each secret also in its JSON-escaped
        forms), cut to MESSAGE_CHARS."""
        forms = {
            form
            for secret in self._secrets
            for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1])
        }
        text = " ".join(redact(str(text or ""), forms).split())
        return text[:MESSAGE_CHARS] + ("…" if len(text) > MESSAGE_CHARS else "")

    def server_message(self, data):
        """What the PEC said in an error answer: ``message``/``error`` of a JSON object, GraphQL ``errors``, or the
        text; scrubbed and cut."""
        answer = _json(data)
        if isinstance(answer, dict):
            errors = graphql_errors(answer)
            if errors:
                return self.scrub("; ".join(errors))
            for key in ("message", "mensagem", "error"):
                if isinstance(answer.get(key), str) and answer[key].strip():
                    return self.scrub(answer[key])
        return self.scrub(data.decode("utf-8", "replace")) or "(sem corpo)"

    def _send(self, method, path, body=None, headers=None, read=True):
        """(status, body bytes: b"" unless ``read``) for any HTTP answer; PecError when nothing answered."""
        url = self.base + path  # the scheme is http(s): checked in __init__
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))  # noqa: S310
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", "sesdf.esus")
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            response = exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise PecError(
                f"the PEC does not answer at {self.base} ({reason}); check that it is running and cnes_import_http_url"
            ) from None
        try:
            return response.getcode(), _read_bounded(response) if read else b""
        except (OSError, http.client.HTTPException) as exc:
            raise PecError(f"the PEC's answer to {method} {path} was cut ({exc})") from None
        finally:
            response.close()

    def post(self, path, body, content_type):
        """POST with the XSRF header; sent a second time only when a 403 came with a new XSRF token."""
        token = self.cookie(XSRF_COOKIE)
        status, data = self._send("POST", path, body, self._post_headers(content_type, token))
        renewed = self.cookie(XSRF_COOKIE)
        if status == 403 and renewed and renewed != token:
            status, data = self._send("POST", path, body, self._post_headers(content_type, renewed))
        return status, data

    @staticmethod
    def _post_headers(content_type, token):
        headers = {"Content-Type": content_type}
        if token:
            headers[XSRF_HEADER] = token
        return headers

    def _xsrf_hint(self):
        return "" if self.cookie(XSRF_COOKIE) else "; the PEC never set an XSRF-TOKEN cookie"

    # the PEC's protocol -------------------------------------------------------------------------------------------

    def start(self):
        """GET / for the XSRF cookie (any answer of the PEC will do: a real 5.4.37 answers / with 200; its page is not
        read)."""
        self._send("GET", "/", read=False)

    def graphql(self, query):
        """(status, parsed answer or None, raw bytes) of a GraphQL POST."""
        status, data = self.post(GRAPHQL_PATH, json.dumps({"query": query}).encode("utf-8"), "application/json")
        return status, _json(data), data

    def login(self, user, password, credentials=CREDENTIALS):
        """The ``login`` mutation; PecError naming ``credentials`` (never their values) when refused."""
        if not user or not password:
            raise PecError(f"the PEC login needs a user and a password: set {credentials} (in the vault)")
        query = (
            f"mutation {{ login(input: {{username: {json.dumps(user)}, password: {json.dumps(password)}, "
            "force: true}) { success } }"
        )
        status, answer, data = self.graphql(query)
        if status in (401, 403):
            raise PecError(
                f"the PEC refused the login (HTTP {status}{self._xsrf_hint()}): check {credentials}"
                + (" and that this user is an administrator of the installation" if status == 403 else "")
            )
        if status != 200 or not isinstance(answer, dict):
            raise PecError(f"the PEC answered the login with HTTP {status}: {self.server_message(data)}")
        found, success = resolve_path(answer, "data.login.success")
        if found and success is True:
            return
        said = "; ".join(graphql_errors(answer)) or "success: false"
        raise PecError(f"the PEC refused the login ({self.scrub(said)}): check {credentials}")

    def upload(self, api_path, municipio_id, path):
        """Submit the CNES file; the PEC's answer when it is a small JSON object, else {}. PecError when refused."""
        target = api_path.replace("{municipio}", urllib.parse.quote(str(municipio_id), safe=""))
        try:
            with open(path, "rb") as handle:
                content = handle.read(MAX_UPLOAD_BYTES + 1)
        except OSError as exc:
            raise PecError(f"cannot read the CNES file {path}: {exc.strerror or exc}") from None
        if len(content) > MAX_UPLOAD_BYTES:
            raise PecError(f"the CNES file {path} is larger than {MAX_UPLOAD_BYTES} bytes; refusing to send it")
        body, content_type = multipart_file(os.path.basename(path), content)
        try:
            status, data = self.post(target, body, content_type)
        except PecError as exc:
            raise PecError(
                f"{exc.msg}. The CNES upload got no answer: the PEC may have taken the file; look at its CNES menu "
                "before running the import again"
            ) from None
        if 200 <= status < 300:
            answer = _json(data) if len(data) <= SMALL_JSON_BYTES else None
            return answer if isinstance(answer, dict) else {}
        said = self.server_message(data)
        if status == 401:
            raise PecError(f"the PEC ended the session before the CNES upload (HTTP 401): {said}")
        if status == 403:
            raise PecError(f"the PEC refused the XSRF token of the CNES upload (HTTP 403{self._xsrf_hint()}): {said}")
        if status == 400:
            raise PecError(
                f"the PEC refused the CNES file or the município id {municipio_id} (HTTP 400): {said}. Check the "
                "file and cnes_import_pec_municipio_id / cnes_import_municipio_query (the PEC's internal id, not the "
                "IBGE code)"
            )
        if status == 404:
            raise PecError(
                f"the PEC has no CNES import API at {target} (HTTP 404); check cnes_import_api_path, or set "
                "cnes_import_api=false to stage the file for a manual import"
            )
        raise PecError(f"the PEC did not take the CNES file (HTTP {status}): {said}")

    def import_status(self, query, path):
        """One status query: ``{"record", "status", "stop", "error"}``: ``record`` the object holding the status
        (the parent of ``path``), ``status`` the status text; ``stop`` set (a reason, Portuguese) when polling
        cannot go on; ``error`` set (a reason) when this answer failed but a later one may not."""
        try:
            status, answer, data = self.graphql(query)
        except PecError as exc:
            return {"record": None, "status": None, "stop": None, "error": exc.msg}
        if status in (401, 403):
            return {"record": None, "status": None, "stop": f"o PEC recusou a consulta de situação (HTTP {status})"}
        if status >= 500 or status in (408, 429):
            return {"record": None, "status": None, "stop": None, "error": f"HTTP {status}"}
        if status != 200 or not isinstance(answer, dict):
            return {
                "record": None,
                "status": None,
                "stop": f"resposta inesperada da consulta de situação (HTTP {status}: {self.server_message(data)})",
            }
        found, value = resolve_path(answer, path)
        if not found or not isinstance(value, str):
            errors = "; ".join(graphql_errors(answer))
            return {
                "record": None,
                "status": None,
                "stop": f"o caminho '{path}' (cnes_import_status_path) "
                + ("não é um texto" if found else "não existe")
                + " na resposta da consulta de situação"
                + (f"; o PEC disse: {self.scrub(errors)}" if errors else ""),
            }
        record = resolve_path(answer, _parent(path))[1] if _parent(path) else answer
        return {"record": record, "status": value, "stop": None, "error": None}

    def wait_for_import(
        self, query, path, failed=(), interval=5, timeout=900, baseline=None, clock=time.monotonic, sleep=time.sleep
    ):
        """Poll the status until CONCLUIDO, a status of ``failed``, a reason to stop, or ``timeout`` seconds.

        ``baseline``: the record holding the newest import's status before the upload; while the answer still shows
        that same record, the new import is not listed yet (a previous CONCLUIDO is never taken for it).
        Returns ``{"outcome": "concluded"|"failed"|"not_verifiable", "status", "why"}``."""
        failed = {str(s) for s in failed or ()}
        start = clock()
        last_status, last_error = None, None
        while True:
            seen = self.import_status(query, path)
            if seen["stop"]:
                return {"outcome": "not_verifiable", "status": last_status, "why": seen["stop"]}
            if seen["error"]:
                last_error = seen["error"]
            elif baseline is None or seen["record"] != baseline:
                last_status, last_error = seen["status"], None
                if last_status == CONCLUIDO:
                    return {"outcome": "concluded", "status": last_status, "why": None}
                if last_status in failed:
                    return {"outcome": "failed", "status": last_status, "why": None}
            elapsed = clock() - start
            if elapsed >= timeout:
                why = f"a situação não chegou a {CONCLUIDO} em {timeout}s (última: {last_status or 'nenhuma'})"
                if last_error:
                    why += f"; último erro: {self.scrub(last_error)}"
                return {"outcome": "not_verifiable", "status": last_status, "why": why}
            sleep(min(interval, timeout - elapsed))


def graphql_errors(answer):
    """The ``message`` of each GraphQL error of an answer."""
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")]


def multipart_file(name, content):
    """(body, content type) of a multipart/form-data with one field ``file``: ``content`` byte for byte (built
    here, not with a MIME library, so no transfer encoding or line-ending change touches a zip)."""
    boundary = "sesdf-esus-" + uuid.uuid4().hex
    safe = "".join(c for c in name if c not in '"\r\n\\') or "cnes.xml"
    mime = "application/zip" if content[:2] == b"PK" else "application/xml"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe}"\r\n'
        f"Content-Type: {mime}\r\n\r\n"
    ).encode("utf-8")
    return head + content + f"\r\n--{boundary}--\r\n".encode("ascii"), f"multipart/form-data; boundary={boundary}"


def check_import_params(params):
    """PecError for options that cannot work, before anything is sent."""
    api_path = params.get("api_path") or ""
    if not api_path.startswith("/") or "{municipio}" not in api_path:
        raise PecError(f"cnes_import_api_path {api_path!r} must start with / and hold {{municipio}}")
    if not str(params.get("municipio_id") or "").strip():
        raise PecError(
            "the PEC's internal id of the município is empty: set cnes_import_pec_municipio_id or "
            "cnes_import_municipio_query (docs/survey.md)"
        )
    if params.get("status_query") and not params.get("status_path"):
        raise PecError(
            "cnes_import_status_query is set without cnes_import_status_path (where its answer has the status)"
        )
    if (params.get("status_interval") or 0) <= 0 or (params.get("status_timeout") or 0) < 0:
        raise PecError("cnes_import_status_interval must be positive and cnes_import_status_timeout not negative")


def import_cnes(params, clock=time.monotonic, sleep=time.sleep):
    """Log in, submit the CNES file, follow the import. ``params``: the options of the module pec_cnes_import.

    Returns ``{"verified", "status", "message", "response"}``: ``verified`` only when the status reached CONCLUIDO.
    Raises PecError before the upload was accepted, and when the import ended with a status of ``status_failed``
    (its ``details`` then hold ``status`` and ``response``)."""
    check_import_params(params)
    # the login is a CPF: masked like the password in what the PEC says back
    secrets = [params.get("password"), params.get("user")]
    session = PecWebSession(params["base_url"], params.get("timeout") or 60, secrets=secrets)
    session.start()
    session.login(params.get("user"), params.get("password"))
    query = (params.get("status_query") or "").strip()
    path = (params.get("status_path") or "").strip()
    baseline = None
    if query:
        before = session.import_status(query, path)
        baseline = before["record"] if not (before["stop"] or before["error"]) else None
    response = session.upload(params.get("api_path") or DEFAULT_API_PATH, params["municipio_id"], params["path"])
    # The PEC accepted the file: from here on nothing fails the import or posts it again.
    if not query:
        why = "nenhuma consulta de situação configurada (cnes_import_status_query)"
        return {"verified": False, "status": None, "message": not_verifiable(why), "response": response}
    outcome = session.wait_for_import(
        query,
        path,
        failed=params.get("status_failed") or (),
        interval=params.get("status_interval") or 5,
        timeout=params.get("status_timeout") if params.get("status_timeout") is not None else 900,
        baseline=baseline,
        clock=clock,
        sleep=sleep,
    )
    if outcome["outcome"] == "concluded":
        message = f"importação do CNES concluída no PEC (situação {CONCLUIDO})"
        return {"verified": True, "status": outcome["status"], "message": message, "response": response}
    if outcome["outcome"] == "failed":
        raise PecError(
            f"the PEC took the CNES file but its import ended with status {outcome['status']} "
            "(cnes_import_status_failed): see the PEC's CNES menu for why; the file was not imported",
            status=outcome["status"],
            response=response,
            verified=False,
        )
    return {
        "verified": False,
        "status": outcome["status"],
        "message": not_verifiable(outcome["why"]),
        "response": response,
    }
