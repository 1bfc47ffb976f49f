# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup archive format and its verification (read by backups, verification and restores).

Archive format: ``pg_dump -Fc -Z0`` (custom format, uncompressed) streamed through ``zstd -T0`` (with its
content checksum), named ``<db>_<label>_<YYYYmmddTHHMMSSZ>.pgdump.zst``, with ``<archive>.sha256``
(sha256sum format) and ``<archive>.manifest.json`` beside it. Verification reads an archive whole once:
sha256 of the bytes on disk, zstd frame checksum and pg_restore's script of every entry (``-f /dev/stdout``: the
PEC's client tools are 9.6, where ``-f -`` is a file named ``-``) into ``RowHasher``, which
hashes each table's COPY data in archive order (the ordered-row hashes of the manifest, compared by the restore
drill). Standard library only (copied onto servers by the backup_schedule role).
"""

from __future__ import annotations

import codecs
import datetime
import glob
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import CHUNK, read_json
from ansible_collections.sesdf.esus.plugins.module_utils._runner import DEVNULL, PIPE, Runner
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import parse_iso
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PGDMP_MAGIC = b"PGDMP"
ARCHIVE_SUFFIX = ".pgdump.zst"
SHA_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.json"
TMP_PREFIX = ".tmp-"
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME_BODY = r"(?P<db>[A-Za-z0-9_]+)_(?P<label>[A-Za-z0-9._-]+)_(?P<ts>\d{8}T\d{6}Z)\.pgdump\.zst"
_NAME_RE = re.compile(rf"^{_NAME_BODY}$")
# the names this collection publishes off the host: an archive or its state copy (collection_state), or their
# age-encrypted copies
OFFHOST_NAMES = r"[A-Za-z0-9_]+_[A-Za-z0-9._-]+_\d{8}T\d{6}Z(?:\.pgdump|\.estado\.tar)\.zst(?:\.age)?"


# pg_restore's SQL script: a table's data is "COPY <table> (<columns>) FROM stdin;", its rows, then a line "\\."
# (a row never is that line: COPY writes a backslash as "\\\\"); the entry's header comment comes just before it
_COPY_LINE = re.compile(rb"^COPY ([^\n]*) FROM stdin;\n", re.M)
_DATA_HEADER = re.compile(rb"-- Data for Name: [^\n]*; Type: TABLE DATA; Schema: ([^\n]*?); Owner: [^\n]*\n--\n\n\Z")
_ENCODING_LINE = re.compile(rb"^SET client_encoding = '([^'\n]*)';$", re.M)
_IDENT = rb'(?:"(?:[^"]|"")*"|[^\s."(]+)'
_COPY_TARGET = re.compile(rb"(" + _IDENT + rb")(?:\.(" + _IDENT + rb"))?(?: |$)")
_END_OF_DATA = b"\n\\.\n"
_HEAD_MAX = 4096  # the header comment of a data entry (names are at most 63 bytes, sanitized to one line)
HASH_CHUNK = 4 * 1024 * 1024


def _unquote(ident, encoding):
    text = ident.decode(encoding, errors="replace")
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def _python_codec(pg_encoding):
    name = (pg_encoding or "UTF8").upper()
    if name in ("SQL_ASCII", "UTF8", "UNICODE"):
        return "utf-8"
    try:
        return codecs.lookup(name.replace("WIN", "cp")).name
    except LookupError:
        return "utf-8"


class RowHasher:
    """Per-table sha256 of COPY data in stream order, fed in big chunks (``bytes.find`` for the end line, never a
    Python loop per row; memory: one chunk).

    ``names=None``: the stream is pg_restore's SQL script; a block is a COPY of a ``TABLE DATA`` entry, named
    ``schema.table`` (the key format of the row counts) from its COPY line (or, unqualified, from the entry's
    schema). With ``names`` (a list), the stream is just blocks, each ended by a ``\\.`` line, named in that order
    (the restore drill's ``COPY ... TO STDOUT`` of each table). ``finish()`` -> {name: hex}; raises PecError when
    the stream ends inside a block or does not match."""

    def __init__(self, names=None):
        self.names = None if names is None else list(names)
        self.hashes = {}
        self.encoding = None
        self._pending = b""
        self._scan = 0
        self._table = None
        self._digest = None
        self._carry = b""
        if self.names is not None:
            self._next_bare()

    def _start(self, name, context=b"\n"):
        self._table = name
        self._digest = hashlib.sha256()
        self._carry = context  # the byte before the data (a newline): not hashed, lets "\n\\.\n" match at once

    def _next_bare(self):
        if len(self.hashes) < len(self.names):
            self._start(self.names[len(self.hashes)])

    def feed(self, data):
        while data:
            if self._table is not None:
                data = self._inside(data)
            elif self.names is not None:
                raise PecError(f"the row stream holds more than the {len(self.names)} tables asked for")
            else:
                data = self._outside(data)

    def _inside(self, data):
        buf = self._carry + data
        end = buf.find(_END_OF_DATA)
        if end < 0:
            cut = max(1, len(buf) - len(_END_OF_DATA) + 1)
            self._digest.update(buf[1:cut])
            self._carry = buf[cut - 1 :]
            return b""
        self._digest.update(buf[1 : end + 1])
        self.hashes[self._table] = self._digest.hexdigest()
        self._table, self._digest, self._carry = None, None, b""
        if self.names is not None:
            self._next_bare()
        return buf[end + len(_END_OF_DATA) :]

    def _outside(self, data):
        buf = self._pending + data
        if self.encoding is None:
            found = _ENCODING_LINE.search(buf)
            if found:
                self.encoding = found.group(1).decode("ascii", errors="replace")
        while True:
            line = _COPY_LINE.search(buf, self._scan)
            if not line:
                break
            header = _DATA_HEADER.search(buf[max(0, line.start() - _HEAD_MAX) : line.start()])
            if header:
                self._pending, self._scan = b"", 0
                self._start(self._copy_name(line.group(1), header.group(1)))
                return buf[line.end() :]
            self._scan = line.end()
        last_nl = buf.rfind(b"\n")
        keep = 0
        if last_nl + 1 > _HEAD_MAX:
            keep = buf.rfind(b"\n", 0, last_nl + 1 - _HEAD_MAX) + 1
        self._pending = buf[keep:]
        self._scan = max(self._scan, last_nl + 1) - keep
        return b""

    def _copy_name(self, target, header_schema):
        codec = _python_codec(self.encoding)
        match = _COPY_TARGET.match(target)
        if not match:
            raise PecError(f"cannot read the table name in the archive's COPY line {target[:200]!r}")
        if match.group(2) is not None:
            return _unquote(match.group(1), codec) + "." + _unquote(match.group(2), codec)
        # pg_dump before 9.6.8 wrote unqualified names under "SET search_path": the entry's schema is in its header
        return header_schema.decode(codec, errors="replace") + "." + _unquote(match.group(1), codec)

    def finish(self):
        if self._table is not None:
            raise PecError(
                f"the row stream ended inside the data of table {self._table} (no end-of-data line): "
                "the archive is truncated or was not read whole"
            )
        return dict(self.hashes)


def hash_stream(handle, hasher, chunk=HASH_CHUNK):
    """Feed ``hasher`` from a binary pipe to its end. A hashing error is kept (and the pipe still drained, so the
    writer never blocks); returns (hashes or None, error or None)."""
    error = None
    for block in iter(lambda: handle.read(chunk), b""):
        if error is None:
            try:
                hasher.feed(block)
            except PecError as exc:
                error = exc.msg
            except (ValueError, LookupError, MemoryError) as exc:
                error = f"{type(exc).__name__}: {exc}"
    if error is None:
        try:
            return hasher.finish(), None
        except PecError as exc:
            error = exc.msg
    return None, error


def archive_name(db_name, label, when):
    return f"{db_name}_{label}_{when.strftime('%Y%m%dT%H%M%SZ')}{ARCHIVE_SUFFIX}"


def validate_label(label):
    if not _LABEL_RE.match(label or ""):
        raise PecError(
            f"backup label {label!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-' "
            "(it becomes part of the file name)"
        )
    return label


# Children die with the backup process (SIGKILL of the job must not leave pg_dump writing).
PIPELINE = Runner(pdeathsig=True)


def read_sha_sidecar(path):
    """The checksum recorded beside an archive (``<archive>.sha256``, sha256sum format), or None."""
    side = path + SHA_SUFFIX
    if not os.path.exists(side):
        return None
    with open(side, encoding="utf-8") as handle:
        text = handle.read().strip()
    value = text.split()[0].lower() if text else ""
    if not re.match(r"^[0-9a-f]{64}$", value):
        raise PecError(f"{side} does not hold a sha256 checksum; the checksum file is damaged")
    return value


def sniff_format(path):
    """'zstd' (this collection's archives), 'custom' (plain pg_dump -Fc, e.g. the installer's) or error."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except FileNotFoundError as exc:
        raise PecError(f"backup file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise PecError(f"{path} is a directory, not a backup file") from exc
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(PGDMP_MAGIC):
        return "custom"
    raise PecError(
        f"{path} is neither a zstd-compressed PostgreSQL archive nor a pg_dump custom-format archive "
        f"(first bytes {head[:8].hex() or 'empty'}); it is not a backup this collection can restore"
    )


def tail_file(path, limit=2000):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return ""
    return text[-limit:].strip()


def find_tool(name, configured=None):
    if configured:
        if os.access(configured, os.X_OK):
            return configured
        raise PecError(f"{name} not found or not executable at {configured}")
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/local/bin:/usr/bin:/bin")
    if not found:
        raise PecError(
            f"{name} is not installed on this server; install the package {name} (Debian: apt install {name})"
        )
    return found


def disk_full(*texts):
    low = " ".join(t or "" for t in texts).lower()
    return "no space left on device" in low or "disk full" in low


def stream_archive(path, fmt, zstd, sink_cmd, env, stderr_dir, hash_it=True, consume=None, cwd=None, runner=None):
    """Read ``path`` whole once: sha256 of its bytes, ``zstd -dc`` (for zstd archives) into ``sink_cmd``; with
    ``consume`` (a function of a binary pipe), the sink's stdout is read by it in a thread. ``cwd``: the sink's
    working directory (a private one, so a file an old tool writes there by name stays inside it).

    Returns dict(sha256, size_bytes, ok, error, stderr, consumed: what ``consume`` returned).
    """
    digest = hashlib.sha256()
    size = 0
    zerr_path = os.path.join(stderr_dir, "zstd-d.err")
    serr_path = os.path.join(stderr_dir, "sink.err")
    runner = runner or PIPELINE
    sink_out = PIPE if consume else DEVNULL
    consumed = []
    with open(zerr_path, "wb") as zerr, open(serr_path, "wb") as serr:
        if fmt == "zstd":
            dec = runner.spawn([zstd, "-d", "-c", "-q"], stdin=PIPE, stdout=PIPE, stderr=zerr)
            try:
                sink = runner.spawn(sink_cmd, stdin=dec.stdout, stdout=sink_out, stderr=serr, env=env, cwd=cwd)
            except BaseException:
                dec.stdin.close()
                dec.stdout.close()
                runner.stop(dec)
                raise
            dec.stdout.close()
            feed = dec.stdin
        else:
            dec = None
            sink = runner.spawn(sink_cmd, stdin=PIPE, stdout=sink_out, stderr=serr, env=env, cwd=cwd)
            feed = sink.stdin
        reader = None
        if consume:
            reader = threading.Thread(target=lambda: consumed.append(consume(sink.stdout)), daemon=True)
            reader.start()
        broken = False
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(CHUNK), b""):
                    size += len(block)
                    if hash_it:
                        digest.update(block)
                    if not broken:
                        try:
                            feed.write(block)
                        except BrokenPipeError:
                            broken = True
        finally:
            try:
                feed.close()
            except BrokenPipeError:
                pass
        dec_rc = dec.wait() if dec else 0
        if reader:
            reader.join()
            sink.stdout.close()
        sink_rc = sink.wait()
    errors = []
    if dec and dec_rc != 0:
        errors.append(f"zstd could not decompress it ({tail_file(zerr_path) or 'rc=' + str(dec_rc)})")
    if sink_rc != 0:
        errors.append(f"{os.path.basename(sink_cmd[0])} failed ({tail_file(serr_path) or 'rc=' + str(sink_rc)})")
    return {
        "sha256": digest.hexdigest() if hash_it else None,
        "size_bytes": size,
        "ok": not errors,
        "error": "; ".join(errors) or None,
        "stderr": tail_file(serr_path),
        "consumed": consumed[0] if consumed else None,
    }


def verify_archive(path, pg_restore, zstd=None, expected_sha256=None, env=None, row_hashes=False):
    """Checksum and full read of an archive. Never raises for a bad archive: returns the findings.

    With ``row_hashes`` the full read writes pg_restore's SQL script into ``RowHasher``: ``row_hashes``
    ({schema.table: sha256 hex of its COPY rows in archive order}) and ``row_hash_encoding`` (the script's
    client_encoding) in the result; a hashing failure fails the verification."""
    fmt = sniff_format(path)
    if fmt == "zstd" and not zstd:
        raise PecError("zstd is needed to read this archive; install the zstd package")
    try:  # beside the archive (its protected directory), else the system's temporary directory
        work = tempfile.mkdtemp(prefix=".sesdf-esus-verify-", dir=os.path.dirname(os.path.abspath(path)))
    except OSError:
        work = tempfile.mkdtemp(prefix="sesdf-esus-verify-")
    try:
        started = time.monotonic()
        # The script goes to /dev/stdout by name: the PEC's pg_restore is 9.6, where "-f -" names a file "-" in the
        # working directory, and 12+ refuses no -f at all. The sink also runs in the private work directory.
        sink = [pg_restore, "-f", "/dev/stdout" if row_hashes else os.devnull] + ([] if fmt == "zstd" else ["-Fc"])
        hasher = RowHasher() if row_hashes else None
        consume = (lambda pipe: hash_stream(pipe, hasher)) if row_hashes else None
        read = stream_archive(path, fmt, zstd, sink, env or clean_env(), work, consume=consume, cwd=work)
        hashes, hash_error = read["consumed"] or (None, "the hashing thread stopped")
        if row_hashes and hash_error is None and not hashes:
            hash_error = "pg_restore's SQL script held no table data at all (no COPY block)"
        hashed_ok = not row_hashes or not read["ok"] or hash_error is None
        checksum_ok = expected_sha256 is None or read["sha256"] == expected_sha256
        problems = []
        if not checksum_ok:
            problems.append(
                f"checksum mismatch: the file's sha256 is {read['sha256']} but {expected_sha256} was recorded; "
                "the file was changed or damaged after it was made"
            )
        if not read["ok"]:
            problems.append(f"full read failed: {read['error']}; the archive is truncated or corrupt")
        if not hashed_ok:
            problems.append(
                f"the ordered-row hashes of the archive could not be computed: {hash_error}; pg_restore's SQL "
                "script did not have the expected COPY blocks (run pec_backup_verify on it and report the message)"
            )
        return {
            "path": path,
            "format": fmt,
            "sha256": read["sha256"],
            "expected_sha256": expected_sha256,
            "checksum_ok": checksum_ok,
            "full_read_ok": read["ok"],
            "size_bytes": read["size_bytes"],
            "ok": checksum_ok and read["ok"] and hashed_ok,
            "problems": problems,
            "duration_s": round(time.monotonic() - started, 3),
            **(
                {"row_hashes": hashes, "row_hash_encoding": hasher.encoding, "row_hashes_ok": hashed_ok}
                if row_hashes
                else {}
            ),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return env


def list_backups(directory, label=None):
    """Published backups in a directory (newest first), from their manifests (or names)."""
    found = []
    for path in glob.glob(os.path.join(directory, "*" + ARCHIVE_SUFFIX)):
        name = os.path.basename(path)
        match = _NAME_RE.match(name)
        if not match:
            continue
        mpath = path + MANIFEST_SUFFIX
        try:
            manifest = read_json(mpath, "backup manifest", missing={})
        except PecError:
            manifest = {}
        created = parse_iso(manifest.get("created_at")) or datetime.datetime.strptime(
            match.group("ts"), "%Y%m%dT%H%M%SZ"
        ).replace(tzinfo=datetime.timezone.utc)
        entry = {
            "path": path,
            "label": manifest.get("label", match.group("label")),
            "created_at": created,
            "verified": bool(manifest.get("verified")),
            "sha256": manifest.get("sha256"),
            "size_bytes": manifest.get("size_bytes", os.path.getsize(path)),
            "verify_level": manifest.get("verify_level"),
            "manifest": mpath if os.path.exists(mpath) else None,
        }
        if label is None or entry["label"] == label:
            found.append(entry)
    found.sort(key=lambda e: e["created_at"], reverse=True)
    return found
