# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only survey of one PEC e-SUS APS server: what a technician runs once per PEC version so that the facts the
collection can only assume (docs/pec-facts.md, "unconfirmed") become known.

It gathers the PEC's versions, the listening TCP ports, what a few paths of the PEC's URL answer (status and content
type only), the installer's ``-help``, the key NAMES of the PEC's configuration files, the schema of every table the
collection reads or writes (columns, types, nullability, primary and foreign keys, an approximate row count from the
catalog), reference rows that are not patient data (names of ``tb_config_sistema`` keys, destination nodes, lote
situations) and the files of the PEC's tree that look like lotes (name, size, mtime). Every probe that fails is
recorded in ``errors`` and the survey goes on.

What it never collects: a row of a patient table, the value of a configuration key, a password, a CPF, the hostname.
The database is read in a read-only session (``default_transaction_read_only``); every string of the bundle is
passed through :func:`scrub` at the end (the install's secrets and the hostname masked, 11+ digit runs and
CPF-shaped text replaced). Standard library only: it runs on the UBS.

The bundle (``format`` 1)::

    {"format": 1, "surveyed_at": ..., "host_fingerprint": sha256(hostname),
     "pec": {"version", "versions": {"config", "database", "http"}, "versions_agree", "installed", "layout",
             "pg_bin_dir", "psql_version", "jre", "units", "database", "collection_state"},
     "http": {"certmgr", "base_url", "versao", "targets": {url: {path: {status, content_type[, versao][, error]}}}},
     "ports": [{"port", "family", "bind"}],
     "installer_help": {installer, java, rc, timed_out, output, output_chars, truncated} | null,
     "config_keys": {"pec_config": [...] | null, "application_properties": [...] | null, "certmgr": [...] | null},
     "schema": {table: {"columns": {col: {"type", "nullable"[, "udt"]}}, "primary_key": [...],
                        "foreign_keys": [{"columns", "references", "referenced_columns"}], "approx_rows": n} | null},
     "reference": {"transmission_tables": [names with a transmission prefix], "audit_tables": [names with ta_],
                   "config_sistema_keys": [...] | null,
                   "tb_nodo": {"columns", "rows", "truncated"} | null,
                   "tb_situacao_lote_transp_nodo": {...} | null, "tb_situacao_lote_transp": {...} | null},
     "files": {"root", "count", "by_kind", "listed": [{"path", "kind", "size", "mtime"}], "truncated", ...},
     "errors": [{"probe", "msg"}]}

A table absent from the database is ``null`` in ``schema`` and ``reference``: that is a finding, not an error. When
the database cannot be read, ``schema`` and ``reference`` are empty and ``errors`` says why.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import ipaddress
import json
import os
import re
import shutil
import tempfile

from ansible_collections.sesdf.esus.plugins.module_utils import _paths
from ansible_collections.sesdf.esus.plugins.module_utils._redact import MASK, MIN_LITERAL, is_secret_key, redact
from ansible_collections.sesdf.esus.plugins.module_utils._runner import STDOUT, Runner
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import (
    PecError,
    normalize_version,
    pec_argument_spec,
    version_tuple,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import CAPABILITIES
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import PgClient, database_version, sql_literal
from ansible_collections.sesdf.esus.plugins.module_utils.pec_host import (
    base_url,
    certmgr_config,
    parse_public_info,
    versions_agree,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_install import (
    PecInstall,
    parse_properties,
    read_text,
)

FORMAT = 1

HTTP_PATHS = ("/", "/esus/", "/api/public/info", "/api/graphql", "/api/recebimento/login")
INFO_PATH = "/api/public/info"
# The transmission tables of a real PEC (docs/pec-facts.md, third review) and the ones the collection's double has.
TRANSMISSION_TABLES = (
    "tb_dado_transp",
    "tb_lote_transp",
    "tb_lote_transp_item",
    "tb_nodo",
    "tb_lote_transp_nodo",
    "tb_lote_transp_item_nodo",
    "tb_situacao_lote_transp_nodo",
    "tb_lote_transp_historico_exprt",
    "tb_envio_log",
    "tb_arquivo_temporario",
    "tb_situacao_lote_transp",
)
# Other tables the collection reads (identity, profiles, units, configuration, the installer's migration lock).
OTHER_TABLES = (
    "tb_localidade",
    "tb_config_sistema",
    "tb_perfil",
    "tb_perfil_recurso",
    "rl_ator_papel_perfil",
    "tb_ator_papel",
    "tb_lotacao",
    "tb_prof",
    "tb_usuario",
    "tb_adm_municipal",
    "tb_adm_geral",
    "tb_unidade_saude",
    "tb_equipe",
    "tb_cbo",
    "tb_migracao_trava",
    # 5.x audit: ta_* shadow tables written by audit_* triggers (pec-facts, third review); their columns, never rows.
    "ta_lotacao",
    "ta_ator_papel",
    "ta_ator_papel_perfil",
)
# Every table whose name starts with one of these is listed by name (the transmission family, whatever it holds).
TABLE_PREFIXES = ("tb_lote", "tb_dado", "tb_nodo", "tb_situacao", "tb_envio")
# ... and the audit shadow tables, listed apart (which table audits rl_ator_papel_perfil on a real PEC is not public).
AUDIT_PREFIX = "ta_"
CONFIG_TABLE = "tb_config_sistema"
NODE_TABLE = "tb_nodo"
NODE_COLUMN_PREFIXES = ("no_", "co_")
SITUATION_TABLES = ("tb_situacao_lote_transp_nodo", "tb_situacao_lote_transp")

# What of the PEC's tree exists (relative to pec_root): which layout this version has.
LAYOUT = (
    "webserver",
    "webserver/pec-bundle.jar",
    "webserver/standalone.sh",
    "webserver/config/application.properties",
    "webserver/config/credenciais.txt",
    "webserver/chaves",
    "webserver/logs/pec.log",
    "webserver/certmgr/config/ssl.properties",
    "webserver/lotes",
    "jre",
    "jre/current",
    "database",
    "backup",
    "log/instalador.log",
)
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system")
_UNIT_RE = re.compile(r"(e-?sus|pec)", re.IGNORECASE)
PROC_NET = (("/proc/net/tcp", "ipv4"), ("/proc/net/tcp6", "ipv6"))
_LISTEN = "0A"

MAX_BUNDLE_BYTES = 1024 * 1024
VALUE_MAX = 200
LIST_MAX = 2000
WALK_MAX_ENTRIES = 200000
HTTP_BODY_MAX = 65536

_ID_RE = re.compile(r"(?<!\d)\d{11,}(?!\d)|(?<!\d)\d{3}\.\d{3}\.\d{3}-\d{2}(?!\d)")
ID_MASK = "[number]"


def argument_spec():
    """The options of the pec_survey module (the shared PEC options and the survey's own), with their defaults."""
    spec = pec_argument_spec()
    spec.update(
        https_url=dict(type="str", default="https://127.0.0.1:443"),
        http_paths=dict(type="list", elements="str", default=list(HTTP_PATHS)),
        info_path=dict(type="str", default=INFO_PATH),
        http_timeout=dict(type="int", default=10),
        version_key=dict(type="str", default="VERSAOBANCODADOS", no_log=False),
        db_timeout=dict(type="int", default=60),
        extra_tables=dict(type="list", elements="str", default=[]),
        reference_row_limit=dict(type="int", default=200),
        installer=dict(type="path"),
        java_bin=dict(type="path"),
        installer_timeout=dict(type="int", default=120),
        installer_output_limit=dict(type="int", default=4096),
        files_limit=dict(type="int", default=200),
        facts_dir=dict(type="path", default=_paths.FACTS_DIR),
    )
    return spec


def survey_tables(extra=()):
    """Every table the survey describes: the tables of every write capability (pec_compat), the transmission and
    identity tables above and ``extra``; sorted."""
    tables = {t for spec in CAPABILITIES.values() for p in spec["profiles"] for t in p["tables"]}
    return sorted(tables | set(TRANSMISSION_TABLES) | set(OTHER_TABLES) | {t for t in extra if t})


# ---------------------------------------------------------------------------------------------- scrubbing


def hostname_literals(hostname):
    """The forms of a hostname to mask wherever they appear (full and short name), at least MIN_LITERAL long."""
    if not hostname:
        return set()
    names = {hostname, hostname.split(".")[0]}
    return {n for n in names if len(n) >= MIN_LITERAL}


def scrub_text(text, literals):
    """A string with every literal masked, then 11+ digit runs (CPF, CNS, phone) and CPF-shaped text replaced."""
    for literal in literals:
        text = text.replace(literal, MASK)
    return _ID_RE.sub(ID_MASK, text)


def scrub(value, literals=()):
    """A JSON-like value with :func:`scrub_text` applied to every string, dictionary keys included."""
    ordered = sorted({str(x) for x in literals if x and len(str(x)) >= MIN_LITERAL}, key=len, reverse=True)

    def walk(item):
        if isinstance(item, str):
            return scrub_text(item, ordered)
        if isinstance(item, dict):
            return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


def fingerprint(hostname):
    """sha256 of the hostname (hex): tells two bundles of one server apart without naming it."""
    return hashlib.sha256((hostname or "").encode("utf-8")).hexdigest()


def _short(value, limit=VALUE_MAX):
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _error(errors, probe, exc):
    msg = exc.msg if isinstance(exc, PecError) else f"{type(exc).__name__}: {exc}"
    errors.append({"probe": probe, "msg": _short(msg, 500)})


# ---------------------------------------------------------------------------------------------- ports


def _decode_address(hex_address, family):
    raw = bytes.fromhex(hex_address)
    if family == "ipv4":
        return ipaddress.IPv4Address(raw[::-1])
    # four 32-bit words, each in host (little-endian) order
    return ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))


def _bind(address):
    if address.is_unspecified:
        return "any"
    mapped = getattr(address, "ipv4_mapped", None)
    if address.is_loopback or (mapped is not None and mapped.is_loopback):
        return "loopback"
    return "host"


def parse_proc_net_tcp(text, family):
    """The listening sockets of one /proc/net/tcp[6] text: [{port, family, bind}] where bind is ``any`` (all
    addresses), ``loopback`` or ``host`` (one of the host's own addresses, not named)."""
    found = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3].upper() != _LISTEN:
            continue
        address, _sep, port = fields[1].partition(":")
        try:
            found.append({"port": int(port, 16), "family": family, "bind": _bind(_decode_address(address, family))})
        except ValueError:
            continue
    return found


def listening_ports(sources=PROC_NET, errors=None):
    """Every listening TCP port of the host, from /proc (no ``ss``), sorted and without duplicates."""
    seen = {}
    for path, family in sources:
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            if errors is not None and family == "ipv4":
                _error(errors, "ports", exc)
            continue
        for entry in parse_proc_net_tcp(text, family):
            seen[(entry["port"], entry["family"], entry["bind"])] = entry
    return [seen[k] for k in sorted(seen)]


# ---------------------------------------------------------------------------------------------- HTTP


def http_get(url, timeout, read_body=False):
    """GET ``url`` without following redirects, without a proxy and without validating a certificate (the PEC is
    asked from the server itself; a certmgr install has a certificate for its public name). Returns (status,
    content type, body: up to HTTP_BODY_MAX bytes when ``read_body``, else b"") for any HTTP answer; raises only
    when nothing answered."""
    import ssl
    import urllib.error
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context), _NoRedirect()
    )
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url}")
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "sesdf.esus-survey"})  # noqa: S310
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        response = exc
    try:
        status = response.getcode()
        content_type = response.headers.get("Content-Type") if response.headers else None
        body = response.read(HTTP_BODY_MAX) if read_body and response.fp else b""
    finally:
        response.close()
    return status, content_type, body


def probe_paths(url, paths, http_get_fn, timeout, info_path=INFO_PATH):
    """{path: {status, content_type[, versao][, error]}} for each path under ``url``; the body is read only for the
    version endpoint, and only its ``versao`` is kept."""
    answers = {}
    for path in paths:
        entry = {"status": None, "content_type": None}
        try:
            status, content_type, body = http_get_fn(url + path, timeout, path == info_path)
            entry["status"] = status
            entry["content_type"] = _short(content_type, 100)
            if path == info_path:
                entry["versao"] = _short(parse_public_info(body), 40) if status == 200 else None
        except Exception as exc:  # nothing answered: recorded, the next path is asked
            entry["error"] = _short(f"{type(exc).__name__}: {exc}", 200)
        answers[path] = entry
    return answers


def survey_http(params, http_get_fn, errors):
    root = params["pec_root"]
    certmgr = certmgr_config(root) is not None
    targets = [params["http_url"].rstrip("/")]
    if certmgr:
        targets.append(params["https_url"].rstrip("/"))
    out = {
        "certmgr": certmgr,
        "base_url": base_url(root, params["http_url"], params["https_url"]),
        "versao": None,
        "targets": {},
    }
    paths = params.get("http_paths") or list(HTTP_PATHS)
    info_path = params.get("info_path") or INFO_PATH
    for url in targets:
        answers = probe_paths(url, paths, http_get_fn, params["http_timeout"], info_path)
        out["targets"][url] = answers
        failed = [p for p, a in answers.items() if "error" in a]
        if failed:
            errors.append({"probe": "http", "msg": _short(f"{url}: no answer on {', '.join(failed)}", 500)})
        out["versao"] = out["versao"] or (answers.get(info_path) or {}).get("versao")
    return out


# ---------------------------------------------------------------------------------------------- files on disk


def json_key_paths(data, prefix=""):
    """The key names of a JSON document as dotted paths (``a``, ``a.b``, ``a[].c``), never a value."""
    paths = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.append(path)
            paths.extend(json_key_paths(value, path))
    elif isinstance(data, list):
        for value in data:
            paths.extend(json_key_paths(value, prefix + "[]"))
    return sorted(set(paths))


def config_versions(config):
    """The version values of /etc/pec.config: top-level keys naming a version whose value is a version number."""
    out = {}
    for key, value in (config or {}).items():
        if re.search(r"vers", str(key), re.IGNORECASE) and isinstance(value, (str, int, float)):
            if version_tuple(value) is not None:
                out[str(key)] = _short(value, 40)
    return out


def read_pec_config_safely(path, errors):
    """(the parsed /etc/pec.config or None, its key paths or None): absent is None, unreadable an error."""
    if not os.path.exists(path):
        return None, None
    try:
        data = json.loads(read_text(path, "PEC installer config"))
    except PecError as exc:
        _error(errors, "pec_config", exc)
        return None, None
    except ValueError as exc:
        errors.append({"probe": "pec_config", "msg": f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')})"})
        return None, None
    return (data if isinstance(data, dict) else None), json_key_paths(data)


def properties_keys(path, what, errors):
    """Sorted key names of a .properties file; None when it is absent."""
    if not path or not os.path.exists(path):
        return None
    try:
        return sorted(parse_properties(read_text(path, what)))[:LIST_MAX]
    except PecError as exc:
        _error(errors, what, exc)
        return None


def layout(root):
    """Which of the known paths exist under the PEC's root."""
    return {rel: os.path.exists(os.path.join(root, rel)) for rel in LAYOUT}


def unit_files(dirs=UNIT_DIRS):
    """Names of the systemd unit files that look like the PEC's (names only)."""
    found = set()
    for directory in dirs:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        found.update(n for n in names if _UNIT_RE.search(n) and n.endswith((".service", ".timer")))
    return sorted(found)[:100]


def _listdir(path, limit=50):
    try:
        return sorted(os.listdir(path))[:limit]
    except OSError:
        return None


def collection_state(facts_dir):
    """Names of the state files this collection keeps on the server (``sesdf_esus_*.fact``), names only."""
    names = _listdir(facts_dir, 100) or []
    return [n for n in names if fnmatch.fnmatch(n, "sesdf_esus_*.fact")]


def lote_kind(rel_path, name, is_dir):
    """Why a path looks like a lote: ``esus`` (a LEDI entry), ``ras_lote`` (a file saved by "Salvar em arquivo" or
    its unzipped folder), ``zip`` (a zip under webserver/); None otherwise."""
    low = name.lower()
    if low.startswith("ras_lote"):
        return "ras_lote"
    if is_dir:
        return None
    if low.endswith(".esus"):
        return "esus"
    if low.endswith(".zip") and (rel_path == "webserver" or rel_path.startswith("webserver" + os.sep)):
        return "zip"
    return None


def _mtime(stat):
    return iso(datetime.datetime.fromtimestamp(stat.st_mtime, datetime.timezone.utc))


def find_lote_files(root, limit=200, max_entries=WALK_MAX_ENTRIES):
    """The files of the PEC's tree that look like lotes (:func:`lote_kind`): relative path, kind, size, mtime of at
    most ``limit`` of them, and how many there are. Symbolic links are not followed; the walk stops after
    ``max_entries`` entries (``walk_truncated``)."""
    out = {
        "root": root,
        "count": 0,
        "by_kind": {"esus": 0, "ras_lote": 0, "zip": 0},
        "listed": [],
        "truncated": False,
        "entries_walked": 0,
        "walk_truncated": False,
    }
    if not os.path.isdir(root):
        out["root_exists"] = False
        return out
    walked = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        entries = [(n, True) for n in dirnames] + [(n, False) for n in sorted(filenames)]
        for name, is_dir in entries:
            walked += 1
            kind = lote_kind(rel_dir, name, is_dir)
            if not kind:
                continue
            out["count"] += 1
            out["by_kind"][kind] += 1
            if len(out["listed"]) >= limit:
                out["truncated"] = True
                continue
            rel = os.path.join(rel_dir, name) if rel_dir else name
            try:
                stat = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            out["listed"].append(
                {"path": rel, "kind": kind, "size": None if is_dir else stat.st_size, "mtime": _mtime(stat)}
            )
        if walked >= max_entries:
            out["walk_truncated"] = True
            break
    out["entries_walked"] = walked
    return out


# ---------------------------------------------------------------------------------------------- installer


def find_java(java_bin, jre_directory, pec_root):
    """The java that runs the installer: the configured one, the system one, the PEC's JRE."""
    candidates = [java_bin, shutil.which("java")]
    if jre_directory:
        candidates.append(os.path.join(jre_directory, "bin", "java"))
    candidates.append(os.path.join(pec_root, "jre", "current", "bin", "java"))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def installer_help(installer, java, timeout, limit, secrets=(), runner=None):
    """``java -jar <installer> -help``, with no input, in a throw-away working directory, bounded by ``timeout``;
    its output (stdout and stderr) masked with :func:`_redact.redact` and cut to ``limit`` characters."""
    out = {
        "installer": os.path.basename(installer),
        "java": java,
        "rc": None,
        "timed_out": False,
        "output": None,
        "output_chars": 0,
        "truncated": False,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    with tempfile.TemporaryDirectory(prefix="sesdf-esus-survey-") as cwd:
        proc = (runner or Runner()).run(
            [java, "-jar", installer, "-help"], stderr=STDOUT, cwd=cwd, env=env, timeout=timeout
        )
    if proc.rc is None and not proc.timed_out:
        raise PecError(proc.why())
    out["rc"] = proc.rc
    out["timed_out"] = proc.timed_out
    text = proc.stdout
    text = redact(text, secrets)  # before the cut: a secret cut in two would escape the mask
    out["output_chars"] = len(text)
    out["truncated"] = len(text) > limit
    out["output"] = text[:limit]
    return out


def survey_installer(params, config, secrets, errors):
    installer = params.get("installer")
    if not installer:
        return None
    if not os.path.isfile(installer):
        errors.append({"probe": "installer_help", "msg": f"installer {installer} not found"})
        return None
    java = find_java(params.get("java_bin"), (config or {}).get("jreDirectory"), params["pec_root"])
    if java is None:
        errors.append(
            {"probe": "installer_help", "msg": "no java found (java_bin, the system's java or the PEC's jre)"}
        )
        return None
    try:
        return installer_help(installer, java, params["installer_timeout"], params["installer_output_limit"], secrets)
    except (OSError, PecError) as exc:
        _error(errors, "installer_help", exc)
        return None


# ---------------------------------------------------------------------------------------------- database


class _ReadOnlyClient(PgClient):
    """The PEC's psql in a session where no transaction can write, and no statement runs for ever."""

    def __init__(self, *args, statement_timeout_ms=60000, **kwargs):
        super().__init__(*args, **kwargs)
        self.statement_timeout_ms = statement_timeout_ms

    def env(self):
        env = super().env()
        env["PGOPTIONS"] = f"-c default_transaction_read_only=on -c statement_timeout={int(self.statement_timeout_ms)}"
        return env


def _ident(name):
    return '"' + str(name).replace('"', '""') + '"'


def _in_list(names):
    return ", ".join(sql_literal(n) for n in names)


def _prefix_filter(column):
    return " OR ".join(f"left({column}, {len(p)}) = {sql_literal(p)}" for p in (*TABLE_PREFIXES, AUDIT_PREFIX))


def read_tables(client, tables):
    """(present tables of ``tables``, names of every table of the schema with a transmission prefix, names of every
    table with the audit prefix ``ta_``)."""
    rows = client.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        f" AND (table_name IN ({_in_list(tables)}) OR {_prefix_filter('table_name')}) ORDER BY 1"
    )
    names = [r[0] for r in rows]
    wanted = set(tables)
    prefixed = [n for n in names if n.startswith(TABLE_PREFIXES)][:LIST_MAX]
    audit = [n for n in names if n.startswith(AUDIT_PREFIX)][:LIST_MAX]
    return [n for n in names if n in wanted], prefixed, audit


def read_columns(client, tables):
    """{table: {column: {type, nullable[, udt]}}} in column order."""
    rows = client.query(
        "SELECT table_name, column_name, data_type, is_nullable, udt_name FROM information_schema.columns"
        f" WHERE table_schema = current_schema() AND table_name IN ({_in_list(tables)})"
        " ORDER BY table_name, ordinal_position"
    )
    columns = {}
    for table, column, data_type, nullable, udt in rows:
        entry = {"type": data_type, "nullable": nullable == "YES"}
        if data_type in ("USER-DEFINED", "ARRAY"):
            entry["udt"] = udt
        columns.setdefault(table, {})[column] = entry
    return columns


def read_keys(client, tables):
    """{table: {"primary_key": [...], "foreign_keys": [{columns, references, referenced_columns}]}}
    (pg_catalog; WITH ORDINALITY and string_agg ... ORDER BY exist in 9.6)."""

    def cols(keys, rel):
        return (
            "(SELECT string_agg(a.attname, ',' ORDER BY k.i) FROM unnest(" + keys + ") WITH ORDINALITY AS k(n, i)"
            " JOIN pg_attribute a ON a.attrelid = " + rel + " AND a.attnum = k.n)"
        )

    rows = client.query(
        "SELECT cl.relname, con.contype, con.conname, "
        + cols("con.conkey", "con.conrelid")
        + ", fcl.relname, "
        + cols("con.confkey", "con.confrelid")
        + " FROM pg_constraint con JOIN pg_class cl ON cl.oid = con.conrelid"
        " JOIN pg_namespace ns ON ns.oid = cl.relnamespace LEFT JOIN pg_class fcl ON fcl.oid = con.confrelid"
        f" WHERE ns.nspname = current_schema() AND con.contype IN ('p', 'f') AND cl.relname IN ({_in_list(tables)})"
        " ORDER BY 1, 2 DESC, 3"
    )
    keys = {}
    for table, kind, _name, columns, ref_table, ref_columns in rows:
        entry = keys.setdefault(table, {"primary_key": [], "foreign_keys": []})
        names = (columns or "").split(",") if columns else []
        if kind == "p":
            entry["primary_key"] = names
        else:
            entry["foreign_keys"].append(
                {
                    "columns": names,
                    "references": ref_table,
                    "referenced_columns": (ref_columns or "").split(",") if ref_columns else [],
                }
            )
    return keys


def read_approx_rows(client, tables):
    """{table: the catalog's estimate of its rows (pg_class.reltuples)}: no table is counted. A table never analysed
    gives 0 on PostgreSQL 9.6 and None from 14 on (-1 there)."""
    rows = client.query(
        "SELECT c.relname, c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname IN"
        f" ({_in_list(tables)})"
    )
    out = {}
    for table, estimate in rows:
        value = int(estimate) if estimate is not None else None
        out[table] = value if value is not None and value >= 0 else None
    return out


def read_rows(client, table, columns, limit):
    """{columns, rows, truncated}: at most ``limit`` rows of ``columns`` of a reference table, values cut short."""
    if not columns:
        return {"columns": [], "rows": [], "truncated": False}
    rows = client.query(
        "SELECT " + ", ".join(_ident(c) for c in columns) + f" FROM {_ident(table)} ORDER BY 1 LIMIT {int(limit) + 1}"
    )
    return {
        "columns": list(columns),
        "rows": [[_short(v) for v in row] for row in rows[:limit]],
        "truncated": len(rows) > limit,
    }


def reference_columns(table, columns):
    """The columns of a reference table the survey reads: not binary, not naming a secret; of ``tb_nodo`` only
    its names and codes (``no_*``, ``co_*``)."""
    chosen = []
    for name, info in columns.items():
        if info.get("type") == "bytea" or is_secret_key(name):
            continue
        if table == NODE_TABLE and not name.startswith(NODE_COLUMN_PREFIXES):
            continue
        chosen.append(name)
    return chosen


def survey_database(client, params, tables, errors):
    """(database facts, database version, schema, reference) from one read-only session; each probe that fails is
    an error and the next one runs."""
    info = {"reachable": False}
    server_version, schema_name, size = client.query(
        "SELECT current_setting('server_version'), current_schema(), pg_database_size(current_database())"
    )[0]
    info.update(reachable=True, server_version=server_version, schema=schema_name)
    info["size_bytes"] = int(size) if size is not None else None

    def attempt(probe, fn, default):
        try:
            return fn()
        except PecError as exc:
            _error(errors, probe, exc)
            return default

    present, prefixed, audit = attempt("schema.tables", lambda: read_tables(client, tables), (None, [], []))
    if present is None:
        return info, None, {}, {}
    columns = attempt("schema.columns", lambda: read_columns(client, present), {})
    keys = attempt("schema.keys", lambda: read_keys(client, present), {})
    estimates = attempt("schema.approx_rows", lambda: read_approx_rows(client, present), {})
    schema = {}
    for table in tables:
        if table not in present:
            schema[table] = None
            continue
        entry = {"columns": columns.get(table, {}), "primary_key": [], "foreign_keys": []}
        entry.update(keys.get(table, {}))
        entry["approx_rows"] = estimates.get(table)
        schema[table] = entry

    config_columns = (schema.get(CONFIG_TABLE) or {}).get("columns", {})
    version = None
    if "co_config_sistema" in config_columns and "ds_texto" in config_columns:
        version = attempt("database_version", lambda: database_version(client, params["version_key"]), None)

    reference = {
        "transmission_tables": prefixed,
        "audit_tables": audit,
        "config_sistema_keys": None,
        NODE_TABLE: None,
        **dict.fromkeys(SITUATION_TABLES),
    }
    if "co_config_sistema" in config_columns:
        reference["config_sistema_keys"] = attempt(
            "reference.config_sistema_keys",
            lambda: [
                r[0] for r in client.query(f"SELECT co_config_sistema FROM {CONFIG_TABLE} ORDER BY 1 LIMIT {LIST_MAX}")
            ],
            None,
        )
    limit = params["reference_row_limit"]
    for table in (NODE_TABLE, *SITUATION_TABLES):
        if schema.get(table) is None:
            continue
        chosen = reference_columns(table, schema[table]["columns"])
        reference[table] = attempt(f"reference.{table}", lambda t=table, c=chosen: read_rows(client, t, c, limit), None)
    return info, version, schema, reference


def psql_version(bin_dir):
    """``psql --version`` of the PEC's client tools (9.6 semantics matter), or None."""
    proc = Runner().run([os.path.join(bin_dir, "psql"), "--version"], timeout=15)
    if proc.rc is None:
        return None
    return _short(proc.stdout.strip(), 80) or None


# ---------------------------------------------------------------------------------------------- the survey


def _bound(bundle, max_bytes=MAX_BUNDLE_BYTES):
    """The bundle under ``max_bytes`` of JSON: reference rows, then listed files, then the installer's output are
    dropped (each said in errors) until it fits."""

    def size():
        return len(json.dumps(bundle, ensure_ascii=False).encode("utf-8"))

    if size() <= max_bytes:
        return bundle
    for table, entry in (bundle.get("reference") or {}).items():
        if isinstance(entry, dict) and entry.get("rows"):
            entry["rows"], entry["truncated"] = [], True
            bundle["errors"].append({"probe": f"reference.{table}", "msg": "rows dropped: the bundle was too large"})
    if size() > max_bytes and bundle["files"].get("listed"):
        bundle["files"]["listed"], bundle["files"]["truncated"] = [], True
        bundle["errors"].append({"probe": "files", "msg": "listing dropped: the bundle was too large"})
    if size() > max_bytes and bundle.get("installer_help"):
        bundle["installer_help"]["output"], bundle["installer_help"]["truncated"] = None, True
        bundle["errors"].append({"probe": "installer_help", "msg": "output dropped: the bundle was too large"})
    return bundle


def gather(params, hostname, http_get_fn=None, proc_net=PROC_NET, unit_dirs=UNIT_DIRS, now=None):
    """The survey bundle (see the module's docstring) and the SQL run; never raises for a broken server.

    ``hostname`` is hashed into ``host_fingerprint`` and masked wherever it would appear; ``http_get_fn(url,
    timeout, read_body) -> (status, content_type, body)`` is the HTTP probe (faked in tests)."""
    http_get_fn = http_get_fn or http_get
    errors = []
    install = PecInstall(params)
    secrets = install.secret_values()
    root = params["pec_root"]
    tables = survey_tables(params.get("extra_tables") or ())

    config, config_key_paths = read_pec_config_safely(install.config_path, errors)
    pg_bin = None
    try:
        pg_bin = install.pg_bin_dir()
    except PecError as exc:
        _error(errors, "pg_bin_dir", exc)
    jre_dir = os.path.join(root, "jre")
    pec = {
        "version": None,
        "versions": {"config": config_versions(config) or None, "database": None, "http": None},
        "versions_agree": False,
        "installed": install.present,
        "layout": layout(root),
        "pg_bin_dir": os.path.relpath(pg_bin, root) if pg_bin and pg_bin.startswith(root) else pg_bin,
        "psql_version": psql_version(pg_bin) if pg_bin else None,
        "jre": _listdir(jre_dir) if os.path.isdir(jre_dir) else None,
        "units": unit_files(unit_dirs),
        "database": {"reachable": False},
        "collection_state": collection_state(params["facts_dir"]),
    }
    schema, reference, executed = {}, {}, []
    if pg_bin:
        try:
            conn = install.connection()
            with _ReadOnlyClient(
                pg_bin,
                conn,
                timeout=params["db_timeout"],
                session=True,
                statement_timeout_ms=params["db_timeout"] * 1000,
            ) as client:
                try:
                    pec["database"], pec["versions"]["database"], schema, reference = survey_database(
                        client, params, tables, errors
                    )
                finally:
                    executed = list(client.executed_queries)
        except PecError as exc:
            _error(errors, "database", exc)
    http = survey_http(params, http_get_fn, errors)
    pec["versions"]["http"] = http["versao"]
    config_version = (pec["versions"]["config"] or {}).get("version")
    sources = {
        "database": normalize_version(pec["versions"]["database"]),
        "config": normalize_version(config_version),
        "http": normalize_version(http["versao"]),
    }
    pec["version"] = sources["database"] or sources["config"] or sources["http"]
    pec["versions_agree"] = versions_agree(sources)[0]
    certmgr = certmgr_config(root)
    bundle = {
        "format": FORMAT,
        "surveyed_at": iso(now or utcnow()),
        "host_fingerprint": None,
        "pec": pec,
        "http": http,
        "ports": listening_ports(proc_net, errors),
        "installer_help": survey_installer(params, config, secrets, errors),
        "config_keys": {
            "pec_config": config_key_paths[:LIST_MAX] if config_key_paths is not None else None,
            "application_properties": properties_keys(install.properties_path, "application.properties", errors),
            "certmgr": properties_keys(certmgr, "certmgr ssl.properties", errors) if certmgr else None,
        },
        "schema": schema,
        "reference": reference,
        "files": find_lote_files(root, params["files_limit"]),
        "errors": errors,
    }
    bundle = scrub(bundle, set(secrets) | hostname_literals(hostname))
    bundle["host_fingerprint"] = fingerprint(hostname)
    return _bound(bundle), executed
