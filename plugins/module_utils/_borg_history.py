# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What happened in a borg 1.x repository, read from its files on the backup host: without borg, without the key,
without the repository lock, nothing written.

A repository directory holds ``config`` (INI: its id, ``append_only``, ``segments_per_dir``), the segment files
``data/<n // segments_per_dir>/<n>`` and, once a client worked in append-only mode, ``transactions``: one line per
transaction committed in append-only mode (``transaction <id>, UTC time <ISO>``). A segment is ``BORG_SEG`` then
entries ``crc32 <I, size <I, tag B`` (PUT 0 and DELETE 1 carry the object's 32-byte id, PUT its data; COMMIT 2 is the
9-byte header alone). A transaction's id is the number of the segment holding its final COMMIT; a repository's
objects are only appended, and a DELETE shadows an object's PUT until ``borg compact`` rewrites the segments.
(borg 1.2: ``docs/usage/notes.rst`` "append-only mode", ``src/borg/repository.py`` ``LoggedIO``.)

Only the headers are read (the data is skipped with a seek), so a repository of tens of GB is scanned in seconds.
``history(path, after)`` groups the committed entries of the segments after transaction ``after`` into
transactions, each marked ``logged`` when the ``transactions`` file names it: a transaction of an append-only
session (on the backup host, the UBS's key is forced to ``borg serve --append-only``), as opposed to one of a
session with full rights (the backup host's own prune and compact).

Standard library only.
"""

from __future__ import annotations

import configparser
import os
import re
import struct
import zlib

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

MAGIC = b"BORG_SEG"
TAG_PUT = 0
TAG_DELETE = 1
TAG_COMMIT = 2
MANIFEST_ID = bytes(32)  # the one object every transaction rewrites
_HEADER = struct.Struct("<IIB")
_KEY_SIZE = 32
_LINE = re.compile(r"^transaction (\d+), UTC time (\S+)\s*$")


_COMMIT_BODY = struct.pack("<IB", _HEADER.size, TAG_COMMIT)
COMMIT = struct.pack("<I", zlib.crc32(_COMMIT_BODY) & 0xFFFFFFFF) + _COMMIT_BODY  # the 9 bytes of every COMMIT


class NotARepository(PecError):
    """The path holds no borg repository (``missing`` when nothing is there at all)."""

    def __init__(self, msg, missing=False):
        super().__init__(msg)
        self.missing = missing


def read_config(path):
    """The repository's ``[repository]`` settings: {id, append_only (bool), segments_per_dir, version}."""
    config_file = os.path.join(path, "config")
    if not os.path.exists(path):
        raise NotARepository(f"there is no repository at {path}", missing=True)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(config_file, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError as exc:
        raise NotARepository(f"{path} is not a borg repository (it has no config file)") from exc
    except PermissionError as exc:
        raise PecError(
            f"the borg repository {path} cannot be read by this user ({exc.strerror}): run as the repository's owner "
            "(backup_schedule_borg_backup_user)"
        ) from exc
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise NotARepository(f"{path} is not a borg repository (its config cannot be read: {exc})") from exc
    if not parser.has_section("repository") or not parser.has_option("repository", "id"):
        raise NotARepository(f"{path} is not a borg repository (its config has no [repository] id)")
    section = parser["repository"]
    try:
        return {
            "id": section.get("id").strip(),
            "append_only": section.get("append_only", "0").strip() in ("1", "true", "True"),
            "segments_per_dir": int(section.get("segments_per_dir", "1000")),
            "version": int(section.get("version", "1")),
        }
    except ValueError as exc:
        raise NotARepository(f"{path} is not a borg repository its tools understand ({exc})") from exc


def segment_numbers(path):
    """The segment files' numbers, ascending."""
    data = os.path.join(path, "data")
    numbers = []
    try:
        directories = os.listdir(data)
    except FileNotFoundError:
        return []
    for directory in directories:
        if not directory.isdigit():
            continue
        for name in os.listdir(os.path.join(data, directory)):
            if name.isdigit():
                numbers.append(int(name))
    return sorted(numbers)


def segment_path(path, number, per_dir):
    return os.path.join(path, "data", str(number // per_dir), str(number))


def entries(filename):
    """(tag, object id or None) of each entry of one segment, in order. A segment cut short (the one being written)
    ends where its last whole entry ends; a segment that is not one raises PecError."""
    with open(filename, "rb") as handle:
        magic = handle.read(len(MAGIC))
        if magic != MAGIC:
            if len(magic) < len(MAGIC):
                return
            raise PecError(f"{filename} is not a borg segment (magic {magic!r}): the repository is damaged")
        size_total = os.fstat(handle.fileno()).st_size
        offset = len(MAGIC)
        while offset + _HEADER.size <= size_total:
            handle.seek(offset)
            _crc, size, tag = _HEADER.unpack(handle.read(_HEADER.size))
            if size < _HEADER.size or offset + size > size_total:
                return  # a torn tail: not committed, borg drops it too
            key = None
            if tag in (TAG_PUT, TAG_DELETE):
                if size < _HEADER.size + _KEY_SIZE:
                    raise PecError(f"{filename}: an entry at {offset} is too short: the repository is damaged")
                key = handle.read(_KEY_SIZE)
            elif tag != TAG_COMMIT:
                raise PecError(f"{filename}: an entry at {offset} has the unknown tag {tag}: the repository is damaged")
            yield tag, key
            offset += size


def ends_with_commit(filename):
    """Whether the segment's last entry is a COMMIT (a transaction ends there)."""
    try:
        with open(filename, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() < len(MAGIC) + len(COMMIT):
                return False
            handle.seek(-len(COMMIT), os.SEEK_END)
            return handle.read(len(COMMIT)) == COMMIT
    except OSError:
        return False


def logged_lines(path):
    """The ``transactions`` file: [(id, "<UTC time>Z")] in file order ([] when there is none)."""
    try:
        with open(os.path.join(path, "transactions"), encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise PecError(f"the transaction log of {path} cannot be read ({exc.strerror}): run as its owner") from exc
    lines = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            when = match.group(2)
            lines.append((int(match.group(1)), when if when.endswith("Z") else when + "Z"))
    return lines


def current_log(lines, last_committed):
    """{id: time} of the logged transactions that still exist: a line followed by one with a lower or equal id was
    undone by a rollback (the ids start again from the transaction rolled back to), and so is a line naming a
    transaction after the repository's last one (a rollback nobody has written to since)."""
    kept = []
    for txn, when in lines:
        kept = [(t, w) for t, w in kept if t < txn]
        kept.append((txn, when))
    return {t: w for t, w in kept if t <= last_committed}


class Transaction:
    __slots__ = ("id", "logged", "ops", "time")

    def __init__(self, txn_id, ops):
        self.id = txn_id
        self.ops = ops
        self.logged = False
        self.time = None


def committed_ids(path, per_dir, numbers=None):
    """The ids of every committed transaction still in the files (segments whose last entry is a COMMIT)."""
    numbers = segment_numbers(path) if numbers is None else numbers
    return [n for n in numbers if ends_with_commit(segment_path(path, n, per_dir))]


def history(path, after, config=None):
    """The committed transactions after transaction ``after`` (-1: all), oldest first, and the id of the
    repository's last committed transaction: ([Transaction], last). Entries after the last COMMIT (a transaction
    still being written, or one that never ended) are left out, as borg leaves them out."""
    config = config or read_config(path)
    per_dir = config["segments_per_dir"]
    numbers = segment_numbers(path)
    txns, pending = [], []
    for number in (n for n in numbers if n > after):
        for tag, key in entries(segment_path(path, number, per_dir)):
            if tag == TAG_COMMIT:
                if txns and txns[-1].id == number:
                    txns[-1].ops.extend(pending)
                else:
                    txns.append(Transaction(number, pending))
                pending = []
            else:
                pending.append((tag, key))
    last = txns[-1].id if txns else after
    log = current_log(logged_lines(path), last)
    for txn in txns:
        if txn.id in log:
            txn.logged, txn.time = True, log[txn.id]
    return txns, last


def last_committed(path, config=None):
    """The id of the repository's last committed transaction (-1 when none)."""
    config = config or read_config(path)
    ids = committed_ids(path, config["segments_per_dir"])
    return ids[-1] if ids else -1


def last_unlogged(path, config=None):
    """The last committed transaction no append-only session made (the backup host's own prune or compact, or the
    repository's creation); -1 when there is none. Where no earlier check recorded where it stopped, what came after
    it is what an append-only client did since the backup host last wrote."""
    config = config or read_config(path)
    ids = committed_ids(path, config["segments_per_dir"])
    if not ids:
        return -1
    log = current_log(logged_lines(path), ids[-1])
    unlogged = [t for t in ids if t not in log]
    return unlogged[-1] if unlogged else -1


def suspicious(txns):
    """What the append-only (logged) transactions removed: every object one of them deleted (or deleted and wrote
    again) unless the copy deleted was written by that same transaction or the one just before it, also logged.
    That exception is borg's checkpoint: ``borg create`` commits a checkpoint archive and deletes it in its next
    transaction. A client that only adds (the UBS's daily ``borg create``, ``check``, ``list``, ``extract``)
    deletes nothing else; ``delete``, ``prune``, ``recreate`` and ``rename`` of an archive (one stored before, or
    one sent in an earlier session since), or a chunk removed under an archive, all show here. The manifest, which
    every transaction rewrites, is left out; so are the full-rights (unlogged) transactions.

    Returns ({object id: id of the first transaction that removed it}, {object id: True when written again
    after}, {object id: position in ``txns`` of the transaction of its last PUT})."""
    last_put = {}
    removed = {}
    for position, txn in enumerate(txns):
        for tag, key in txn.ops:
            if key == MANIFEST_ID:
                continue
            if tag == TAG_PUT:
                last_put[key] = position
                continue
            source = last_put.pop(key, None)
            if not txn.logged:
                continue
            checkpoint = source is not None and source >= position - 1 and txns[source].logged
            if not checkpoint:
                removed.setdefault(key, txn.id)
    written_again = {key: key in last_put for key in removed}
    return removed, written_again, last_put
