# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup archive format and its verification (read by backups, verification and restores).

Archive format: ``pg_dump -Fc -Z0`` (custom format, uncompressed) streamed through ``zstd -T0`` (with its
content checksum), named ``<db>_<label>_<YYYYmmddTHHMMSSZ>.pgdump.zst``, with ``<archive>.sha256``
(sha256sum format) and ``<archive>.manifest.json`` beside it. Verification reads an archive whole once:
sha256 of the bytes on disk, zstd frame checksum and ``pg_restore -f /dev/null`` of every entry.
Standard library only (copied onto servers by the backup_schedule role).
"""

from __future__ import annotations

import ctypes
import datetime
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import CHUNK, read_json
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
# the names this collection publishes off the host: an archive, or its age-encrypted copy
OFFHOST_NAMES = r"[A-Za-z0-9_]+_[A-Za-z0-9._-]+_\d{8}T\d{6}Z\.pgdump\.zst(?:\.age)?"


def archive_name(db_name, label, when):
    return f"{db_name}_{label}_{when.strftime('%Y%m%dT%H%M%SZ')}{ARCHIVE_SUFFIX}"


def validate_label(label):
    if not _LABEL_RE.match(label or ""):
        raise PecError(
            f"backup label {label!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-' "
            "(it becomes part of the file name)"
        )
    return label


def set_pdeathsig():
    """Children die with the backup process (SIGKILL of the job must not leave pg_dump writing)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


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


def stream_archive(path, fmt, zstd, sink_cmd, env, stderr_dir, hash_it=True):
    """Read ``path`` whole once: sha256 of its bytes, ``zstd -dc`` (for zstd archives) into ``sink_cmd``.

    Returns dict(sha256, size_bytes, ok, error).
    """
    digest = hashlib.sha256()
    size = 0
    zerr_path = os.path.join(stderr_dir, "zstd-d.err")
    serr_path = os.path.join(stderr_dir, "sink.err")
    with open(zerr_path, "wb") as zerr, open(serr_path, "wb") as serr:
        if fmt == "zstd":
            dec = subprocess.Popen(
                [zstd, "-d", "-c", "-q"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=zerr,
                preexec_fn=set_pdeathsig,
            )
            sink = subprocess.Popen(
                sink_cmd, stdin=dec.stdout, stdout=subprocess.DEVNULL, stderr=serr, env=env, preexec_fn=set_pdeathsig
            )
            dec.stdout.close()
            feed = dec.stdin
        else:
            dec = None
            sink = subprocess.Popen(
                sink_cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=serr,
                env=env,
                preexec_fn=set_pdeathsig,
            )
            feed = sink.stdin
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
    }


def verify_archive(path, pg_restore, zstd=None, expected_sha256=None, env=None):
    """Checksum and full read of an archive. Never raises for a bad archive: returns the findings."""
    fmt = sniff_format(path)
    if fmt == "zstd" and not zstd:
        raise PecError("zstd is needed to read this archive; install the zstd package")
    work = tempfile.mkdtemp(prefix="sesdf-esus-verify-")
    try:
        started = time.monotonic()
        sink = [pg_restore, "-f", "/dev/null"] + ([] if fmt == "zstd" else ["-Fc"])
        read = stream_archive(path, fmt, zstd, sink, env or clean_env(), work)
        checksum_ok = expected_sha256 is None or read["sha256"] == expected_sha256
        problems = []
        if not checksum_ok:
            problems.append(
                f"checksum mismatch: the file's sha256 is {read['sha256']} but {expected_sha256} was recorded; "
                "the file was changed or damaged after it was made"
            )
        if not read["ok"]:
            problems.append(f"full read failed: {read['error']}; the archive is truncated or corrupt")
        return {
            "path": path,
            "format": fmt,
            "sha256": read["sha256"],
            "expected_sha256": expected_sha256,
            "checksum_ok": checksum_ok,
            "full_read_ok": read["ok"],
            "size_bytes": read["size_bytes"],
            "ok": checksum_ok and read["ok"],
            "problems": problems,
            "duration_s": round(time.monotonic() - started, 3),
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
