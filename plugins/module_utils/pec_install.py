# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a PEC e-SUS install from disk: /etc/pec.config, application.properties, credenciais.txt.

Pure parsing lives in functions that take text, so pytest tests them without a server.
"""

from __future__ import annotations

import glob
import json
import os
import re

from ansible_collections.sesdf.esus.plugins.module_utils._redact import is_secret_key
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

WEBSERVER_SUBDIR = "webserver"
PROPERTIES_SUBPATH = os.path.join("webserver", "config", "application.properties")
CREDENTIALS_SUBPATH = os.path.join("webserver", "config", "credenciais.txt")
DATABASE_GLOB = os.path.join("database", "postgresql-*", "bin")

_JDBC_RE = re.compile(r"^jdbc:postgresql://(?P<host>\[[^\]]+\]|[^:/?]+)(?::(?P<port>\d+))?/(?P<db>[^?;]+)")


def parse_properties(text):
    """Parse Java .properties text (comments, ``=``/``:``/space separators, continuations, escapes)."""
    result = {}
    logical = []
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        backslashes = len(line) - len(line.rstrip("\\"))
        if backslashes % 2 == 1:
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    for line in logical:
        key_chars = []
        i = 0
        while i < len(line):
            ch = line[i]
            if ch == "\\" and i + 1 < len(line):
                key_chars.append(_unescape_char(line[i + 1]))
                i += 2
                continue
            if ch in "=: \t":
                break
            key_chars.append(ch)
            i += 1
        rest = line[i:].lstrip(" \t")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t")
        result["".join(key_chars)] = _unescape(rest)
    return result


def _unescape_char(ch):
    return {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(ch, ch)


def _unescape(value):
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", value[i + 2 : i + 6]):
                out.append(chr(int(value[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_unescape_char(nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_jdbc_url(url):
    """``jdbc:postgresql://localhost:5433/esus`` -> {'host': 'localhost', 'port': 5433, 'name': 'esus'}."""
    match = _JDBC_RE.match((url or "").strip())
    if not match:
        raise PecError(
            f"not a PostgreSQL JDBC URL: {url!r}; expected jdbc:postgresql://HOST:PORT/DATABASE "
            "(check spring.datasource.url in application.properties, or set db_host/db_port/db_name)"
        )
    host = match.group("host").strip("[]")
    return {"host": host, "port": int(match.group("port") or 5432), "name": match.group("db")}


def parse_credentials(text):
    """Parse credenciais.txt: the connection URL and the user blocks (full access, read-only), in file order.

    Returns {'url': str|None, 'users': [{'user': ..., 'password': ...}, ...]}.
    """
    url = None
    users = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if ":" not in line:
            continue
        label, _sep, value = line.partition(":")
        label = label.strip().lower()
        value = value.strip()
        if label.startswith("url"):
            url = value
        elif label in ("usuário", "usuario", "user", "login"):
            current = {"user": value, "password": None}
            users.append(current)
        elif label in ("senha", "password") and current is not None:
            current["password"] = value
    return {"url": url, "users": users}


def read_text(path, what):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise PecError(f"{what} not found at {path}") from exc
    except PermissionError as exc:
        raise PecError(f"cannot read {what} at {path}: permission denied; run the task with become: true") from exc
    except IsADirectoryError as exc:
        raise PecError(f"{what} path {path} is a directory, not a file") from exc


def read_pec_config(path):
    """Parse /etc/pec.config (JSON written by the installer)."""
    text = read_text(path, "PEC installer config")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PecError(
            f"{path} is not valid JSON ({exc}); the PEC installer may have been interrupted: "
            "rerun the installer or restore the file from a backup"
        ) from exc
    if not isinstance(data, dict):
        raise PecError(f"{path} does not hold a JSON object")
    return data


def find_pg_bin_dir(pec_root):
    """The PEC's bundled PostgreSQL client tools directory, or None."""
    for candidate in sorted(glob.glob(os.path.join(pec_root, DATABASE_GLOB)), reverse=True):
        if os.path.isfile(os.path.join(candidate, "psql")) or os.path.isfile(os.path.join(candidate, "pg_dump")):
            return candidate
    return None


class PecInstall:
    """What is on disk of one PEC install, resolved from module parameters and the install's own files."""

    def __init__(self, params):
        self.params = params
        self.root = params["pec_root"]
        self.config_path = params["pec_config_path"]
        self.properties_path = os.path.join(self.root, PROPERTIES_SUBPATH)
        self.credentials_path = os.path.join(self.root, CREDENTIALS_SUBPATH)
        self.webserver_dir = os.path.join(self.root, WEBSERVER_SUBDIR)

    @property
    def present(self):
        """True when a PEC install is on this host (config file or webserver directory)."""
        return os.path.exists(self.config_path) or os.path.isdir(self.webserver_dir)

    def config(self):
        return read_pec_config(self.config_path)

    def properties(self):
        return parse_properties(read_text(self.properties_path, "PEC application.properties"))

    def credentials(self):
        return parse_credentials(read_text(self.credentials_path, "PEC credenciais.txt"))

    def pg_bin_dir(self):
        configured = self.params.get("pg_bin_dir")
        if configured:
            if not os.path.isdir(configured):
                raise PecError(f"pg_bin_dir {configured} is not a directory")
            return configured
        found = find_pg_bin_dir(self.root)
        if not found:
            raise PecError(
                f"no PostgreSQL client tools found under {os.path.join(self.root, DATABASE_GLOB)}; "
                "set pg_bin_dir to the directory holding psql and pg_dump"
            )
        return found

    def connection(self):
        """Connection parameters: module options first, then application.properties, then credenciais.txt.

        Returns a dict with host, port, name, user, password (the password is for the client only:
        never return it from a module).
        """
        p = self.params
        resolved = {
            "host": p.get("db_host"),
            "port": p.get("db_port"),
            "name": p.get("db_name"),
            "user": p.get("db_user"),
            "password": p.get("db_password"),
        }
        if all(resolved[k] is not None for k in ("host", "port", "name", "user", "password")):
            return resolved
        props = {}
        props_error = None
        try:
            props = self.properties()
        except PecError as exc:
            props_error = exc
        url = props.get("spring.datasource.url")
        user = props.get("spring.datasource.username")
        password = props.get("spring.datasource.password")
        if url is None or user is None or password is None:
            try:
                creds = self.credentials()
            except PecError as exc:
                if props_error is not None:
                    raise PecError(
                        f"database credentials unreadable: {props_error.msg}; and {exc.msg}. "
                        "Set db_user/db_password, or fix the install's config files"
                    ) from exc
                creds = {"url": None, "users": []}
            url = url or creds["url"]
            if creds["users"] and (user is None or password is None):
                first = creds["users"][0]
                user = user or first["user"]
                password = password or first["password"]
        if url:
            parsed = parse_jdbc_url(url)
            resolved["host"] = resolved["host"] or parsed["host"]
            resolved["port"] = resolved["port"] or parsed["port"]
            resolved["name"] = resolved["name"] or parsed["name"]
        resolved["user"] = resolved["user"] or user
        resolved["password"] = resolved["password"] if resolved["password"] is not None else password
        missing = [k for k in ("host", "port", "name", "user", "password") if resolved[k] is None]
        if missing:
            raise PecError(
                f"database connection incomplete: {', '.join(missing)} not found in {self.properties_path} "
                f"or {self.credentials_path}; set the db_* options"
            )
        return resolved

    def secret_values(self):
        """Every secret this install's files and the module options hold (database passwords of
        application.properties, credenciais.txt and /etc/pec.config, ``db_password``), for masking text the
        module returns. Never raises: an unreadable file gives nothing."""
        found = set()
        if self.params.get("db_password"):
            found.add(self.params["db_password"])
        readers = (
            (self.properties, lambda data: [v for k, v in data.items() if is_secret_key(k)]),
            (self.credentials, lambda data: [u.get("password") for u in data["users"]]),
            (self.config, lambda data: [v for k, v in data.items() if is_secret_key(k) and isinstance(v, str)]),
        )
        for read, values in readers:
            try:
                found.update(v for v in values(read()) if v)
            except (PecError, OSError, ValueError):
                continue
        for url in self._urls():
            match = re.search(r"[?&;]password=([^&;]+)", url, re.IGNORECASE)
            if match:
                found.add(match.group(1))
        return found

    def _urls(self):
        urls = []
        for read, key in ((self.properties, "spring.datasource.url"), (self.config, "databaseUrl")):
            try:
                value = read().get(key)
            except (PecError, OSError, ValueError):
                continue
            if isinstance(value, str):
                urls.append(value)
        return urls
