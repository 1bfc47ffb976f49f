# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files: checksums, durable atomic writes, JSON reads. The one implementation every module and job uses.

A file this collection writes under a final name is always complete: it is written under a hidden temporary
name in the same directory (``.<name>.<random>.tmp``), fsynced, renamed over the final name, and the directory
is fsynced. A failure removes the temporary and raises ``PecError`` with what to do; the old file stays.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

CHUNK = 1024 * 1024
TMP_SUFFIX = ".tmp"


def sha256_file(path, chunk=CHUNK):
    """Hex sha256 of a file, read in chunks (multi-GB archives stay out of memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path):
    """fsync a directory so a rename in it survives a power cut. Best effort where the file system refuses."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def unlink_quiet(path):
    """Remove a file; a file already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def temp_prefix(path):
    """The hidden temporary prefix used for ``path`` (``.<basename>.``): cleaners match on it."""
    return "." + os.path.basename(path) + "."


def atomic_write(path, data, mode=0o600, uid=None, gid=None):
    """Write ``data`` (bytes, or str as UTF-8) to ``path`` atomically and durably, with ``mode`` (and ``uid``,
    ``gid`` when given: set on the temporary, before the rename, so the final name never has other ones).

    Raises PecError (nothing lost: the previous file, if any, is intact) when the directory is missing,
    not writable or full.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TMP_SUFFIX, dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if uid is not None or gid is not None:
            os.chown(tmp, -1 if uid is None else uid, -1 if gid is None else gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        hint = "free space on that file system" if exc.errno == errno.ENOSPC else "check the directory"
        raise PecError(f"cannot write {path}: {exc.strerror or exc}; nothing was lost, {hint} and run again") from exc
    fsync_dir(directory)


def write_json(path, document, mode=0o600, indent=2):
    """``document`` as pretty, key-sorted UTF-8 JSON, written with :func:`atomic_write`."""
    text = json.dumps(document, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write(path, text, mode)


def read_json(path, what="file", missing=None):
    """A JSON file's content; ``missing`` when the file does not exist.

    Raises PecError naming ``what`` when the file exists but cannot be read or parsed: such a file is state
    somebody depends on, so the message says to inspect it, never to delete it.
    """
    if not path or not os.path.exists(path):
        return missing
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise PecError(
            f"{what} {path} is unreadable ({exc}); do not delete it: inspect it and fix or restore it"
        ) from exc
