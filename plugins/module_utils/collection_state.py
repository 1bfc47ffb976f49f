# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's own state on a UBS server, copied off the host beside each daily backup and put back by a
rebuild (docs/rebuild.md).

What a rebuilt server needs besides the PEC's database: the lotes ledger and the rest of the state directory
(``/var/lib/sesdf-esus`` without borg's cache, the hardening's quarantine and the run-time markers), the job
configurations (``/etc/sesdf-esus/*.json``: never the borg passphrase, key or known hosts, which are not JSON) and
the state records of the report (``/etc/ansible/facts.d/sesdf_esus_*.fact``).

When the daily job publishes a verified backup it writes, beside it, ``<db>_<label>_<UTC>.estado.tar.zst``: a tar
(zstd) of one tree, ``sesdf-esus-estado/``, holding those files under their absolute paths
(``sesdf-esus-estado/var/lib/sesdf-esus/lotes/ledger.json``), the backup's manifest
(``sesdf-esus-estado/backup.manifest.json``: row counts, ordered-row hashes, PEC version) and ``manifest.json``
(every file's sha256, size and mode, the roots, the host, the CNES, the archive it belongs to). The off-host stage
sends it with the dump: inside the same borg archive as the tree, or beside the dump (age-encrypted when the dump
is) for the mount and rsync methods. The sidecar goes when its archive goes (``remove_orphans`` after retention).

Standard library only (plus the sibling module_utils): copied onto the servers for the daily job.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import io
import json
import os
import shutil
import socket
import stat
import tarfile

from ansible_collections.sesdf.esus.plugins.module_utils import _paths
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import CHUNK, fsync_dir, unlink_quiet
from ansible_collections.sesdf.esus.plugins.module_utils._runner import DEVNULL, PIPE, Runner
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

TREE = "sesdf-esus-estado"
SUFFIX = ".estado.tar.zst"
ARCHIVE_SUFFIX = ".pgdump.zst"
MANIFEST = "manifest.json"
BACKUP_MANIFEST = "backup.manifest.json"
FORMAT = "sesdf.esus/estado/1"
TMP_PREFIX = ".tmp-"
# under the state directory: borg's cache, the hardening's quarantine, markers and caches of this host only
STATE_EXCLUDE = ("borg", "quarentena", "app-stopped.json", "backup-check.json")
CONFIG_PATTERN = "*.json"
FACTS_PATTERN = "sesdf_esus_*.fact"
# names never copied wherever they are: locks and the temporaries of atomic writes
_NEVER = (".lock", ".*.tmp", TMP_PREFIX + "*")
PIPELINE = Runner(pdeathsig=True)


def roots(params):
    """{kind: directory}: the three places the copy reads, from the job's configuration (defaults: _paths)."""
    return {
        "state": params.get("state_dir") or _paths.STATE_DIR,
        "config": params.get("config_dir") or _paths.CONFIG_DIR,
        "facts": params.get("facts_dir") or _paths.FACTS_DIR,
    }


def state_name(archive_path):
    """``.../esus_diario_20260101T023000Z.pgdump.zst`` -> ``.../esus_diario_20260101T023000Z.estado.tar.zst``."""
    if not archive_path.endswith(ARCHIVE_SUFFIX):
        raise PecError(f"{archive_path} is not a backup archive (*{ARCHIVE_SUFFIX})")
    return archive_path[: -len(ARCHIVE_SUFFIX)] + SUFFIX


def _never(name):
    return any(fnmatch.fnmatch(name, pattern) for pattern in _NEVER)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def collect(where, exclude=STATE_EXCLUDE):
    """The files the copy holds: [{kind, path, size, mode}] (regular files only; links, sockets, locks and
    temporaries left out), sorted by path. ``where``: :func:`roots`; ``exclude``: names under the state directory."""
    found = []
    state = where["state"]
    if os.path.isdir(state):
        for dirpath, dirnames, filenames in os.walk(state):
            rel = os.path.relpath(dirpath, state)
            if rel == ".":
                dirnames[:] = [d for d in dirnames if d not in exclude]
                filenames = [f for f in filenames if f not in exclude]
            dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
            for name in filenames:
                found.append(("state", os.path.join(dirpath, name)))
    for kind, pattern in (("config", CONFIG_PATTERN), ("facts", FACTS_PATTERN)):
        directory = where[kind]
        if os.path.isdir(directory):
            for name in os.listdir(directory):
                if fnmatch.fnmatch(name, pattern):
                    found.append((kind, os.path.join(directory, name)))
    files = []
    for kind, path in found:
        if _never(os.path.basename(path)):
            continue
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        files.append({"kind": kind, "path": path, "size": st.st_size, "mode": f"{stat.S_IMODE(st.st_mode):04o}"})
    return sorted(files, key=lambda f: f["path"])


def member_name(path):
    """The name of a file in the tree: its absolute path under TREE."""
    return TREE + "/" + os.path.abspath(path).lstrip("/")


def _add_bytes(tar, name, data, mode=0o600):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(utcnow().timestamp())
    tar.addfile(info, io.BytesIO(data))


def snapshot(archive_path, params, zstd, now=None, cnes=None):
    """Write the state copy of ``archive_path`` beside it (:func:`state_name`): tar -> zstd into a hidden temporary,
    fsync, rename. Returns {path, files, bytes, sha256}. A file that vanishes while it is read is left out (the
    ledger is always replaced by rename, never rewritten in place). Raises PecError; nothing is left behind."""
    final = state_name(archive_path)
    directory = os.path.dirname(os.path.abspath(final))
    tmp = os.path.join(directory, f"{TMP_PREFIX}{os.path.basename(final)}.{os.getpid()}")
    where = roots(params)
    exclude = tuple(params.get("state_exclude") or STATE_EXCLUDE)
    files = collect(where, exclude)
    document = {
        "format": FORMAT,
        "created_at": iso(now or utcnow()),
        "host": socket.gethostname(),
        "cnes": str(cnes or params.get("cnes") or "") or None,
        "archive": os.path.basename(archive_path),
        "roots": where,
        "excluded": sorted(exclude),
        "files": [],
    }
    err_path = tmp + ".err"
    try:
        with open(err_path, "wb") as err:
            proc = PIPELINE.spawn([zstd, "-q", "-3", "-f", "-o", tmp], stdin=PIPE, stdout=DEVNULL, stderr=err)
            try:
                with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    manifest_path = archive_path + ".manifest.json"
                    if os.path.isfile(manifest_path):
                        with open(manifest_path, "rb") as handle:
                            _add_bytes(tar, f"{TREE}/{BACKUP_MANIFEST}", handle.read())
                    for entry in files:
                        try:
                            with open(entry["path"], "rb") as handle:
                                data = handle.read()
                        except FileNotFoundError:
                            continue
                        _add_bytes(tar, member_name(entry["path"]), data, int(entry["mode"], 8))
                        document["files"].append(
                            dict(
                                entry,
                                name=member_name(entry["path"])[len(TREE) + 1 :],
                                size=len(data),
                                sha256=hashlib.sha256(data).hexdigest(),
                            )
                        )
                    body = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
                    _add_bytes(tar, f"{TREE}/{MANIFEST}", body)
            finally:
                proc.stdin.close()
                rc = proc.wait()
        if rc != 0:
            with open(err_path, encoding="utf-8", errors="replace") as handle:
                said = handle.read().strip()
            raise PecError(f"zstd could not write the state copy {final} ({said or 'rc=' + str(rc)})")
        os.chmod(tmp, 0o600)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        fsync_dir(directory)
    except OSError as exc:
        raise PecError(f"the state copy {final} could not be written: {exc.strerror or exc}") from exc
    finally:
        unlink_quiet(tmp)
        unlink_quiet(err_path)
    return {
        "path": final,
        "files": len(document["files"]),
        "bytes": sum(f["size"] for f in document["files"]),
        "sha256": _sha256(final),
    }


def remove_orphans(directory):
    """Remove the state copies whose backup archive is gone (after retention). Returns their paths."""
    removed = []
    if not os.path.isdir(directory):
        return removed
    for name in sorted(os.listdir(directory)):
        if name.endswith(SUFFIX) and not name.startswith("."):
            archive = os.path.join(directory, name[: -len(SUFFIX)] + ARCHIVE_SUFFIX)
            if not os.path.exists(archive):
                unlink_quiet(os.path.join(directory, name))
                removed.append(os.path.join(directory, name))
    if removed:
        fsync_dir(directory)
    return removed


# ------------------------------------------------------------------------- reading a copy back (the rebuild)
def _safe_member(member):
    """A member of a state copy we extract: a regular file or a directory, named under TREE, no '..'."""
    name = member.name
    parts = name.split("/")
    return (member.isfile() or member.isdir()) and not name.startswith("/") and ".." not in parts and parts[0] == TREE


def extract_tar(stream, work_dir):
    """Extract a state tree from a tar stream (a file object) into ``work_dir``: only regular files and directories
    under TREE (anything else is refused). Returns the tree's path."""
    os.makedirs(work_dir, mode=0o700, exist_ok=True)
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            if not _safe_member(member):
                raise PecError(f"the state copy holds {member.name!r}, which is not part of a {TREE}/ tree: refused")
            target = os.path.join(work_dir, *member.name.split("/"))
            if member.isdir():
                os.makedirs(target, mode=0o700, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            source = tar.extractfile(member)
            with open(target, "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
            os.chmod(target, 0o600)
    tree = os.path.join(work_dir, TREE)
    if not os.path.isdir(tree):
        raise PecError(f"the state copy holds no {TREE}/ tree")
    return tree


def extract_file(path, zstd, work_dir):
    """Extract a ``*.estado.tar.zst`` file (:func:`snapshot`) into ``work_dir``. Returns the tree's path."""
    proc = PIPELINE.spawn([zstd, "-dc", "-q", path], stdout=PIPE, stderr=PIPE)
    tree, broken = None, None
    try:
        tree = extract_tar(proc.stdout, work_dir)
    except (tarfile.TarError, OSError) as exc:
        broken = str(exc) or type(exc).__name__
    finally:
        proc.stdout.close()
        proc.kill()
        rc = proc.wait()
        said = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
    if broken or rc not in (0, -9):  # -9: killed after the tar's end (its trailing blocks left unread)
        raise PecError(f"the state copy {path} could not be read ({said or broken or 'zstd rc=' + str(rc)})")
    return tree


def read_tree(tree):
    """The tree's manifest, every file checked against its sha256 and size: (manifest, backup manifest or None).
    Raises PecError naming the files that differ or are missing."""
    path = os.path.join(tree, MANIFEST)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as exc:
        raise PecError(f"the state copy has no readable {MANIFEST} ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PecError(f"the state copy's {MANIFEST} is not a {FORMAT} manifest")
    bad = []
    for entry in manifest.get("files") or []:
        local = os.path.join(tree, *entry["name"].split("/"))
        if not os.path.isfile(local):
            bad.append(f"{entry['name']} missing")
        elif _sha256(local) != entry.get("sha256"):
            bad.append(f"{entry['name']} differs")
    if bad:
        raise PecError(f"the state copy is damaged: {', '.join(bad[:5])}")
    backup = None
    backup_path = os.path.join(tree, BACKUP_MANIFEST)
    if os.path.isfile(backup_path):
        try:
            with open(backup_path, encoding="utf-8") as handle:
                backup = json.load(handle)
        except (OSError, ValueError):
            backup = None
    return manifest, backup


def plan_restore(tree, manifest, where, skip=()):
    """What putting the tree back does, per file: [{name, source, target, mode, action}] with ``action`` one of
    ``create``, ``replace``, ``same``, ``skip``. Files are put back under ``where`` (the new server's roots),
    mapped from the roots the copy recorded. ``skip``: basenames or tree names never put back."""
    recorded = manifest.get("roots") or {}
    out = []
    for entry in manifest.get("files") or []:
        kind = entry.get("kind")
        if kind not in where or kind not in recorded:
            continue
        original = entry["path"]
        rel = os.path.relpath(original, recorded[kind])
        if rel.startswith(".."):
            continue
        target = os.path.join(where[kind], rel)
        source = os.path.join(tree, *entry["name"].split("/"))
        if os.path.basename(original) in skip or entry["name"] in skip:
            action = "skip"
        elif not os.path.exists(target):
            action = "create"
        elif os.path.isfile(target) and _sha256(target) == entry.get("sha256"):
            action = "same"
        else:
            action = "replace"
        out.append({"name": entry["name"], "source": source, "target": target, "mode": entry["mode"], "action": action})
    return out


def apply_restore(plan, check_mode=False):
    """Put the files of ``plan`` back (tmp + fsync + rename, root-owned, the recorded mode; their directories made
    0700 when missing). Returns {created, replaced, same, skipped}: lists of target paths."""
    done = {"created": [], "replaced": [], "same": [], "skipped": []}
    for item in plan:
        key = {"create": "created", "replace": "replaced", "same": "same", "skip": "skipped"}[item["action"]]
        done[key].append(item["target"])
        if check_mode or item["action"] not in ("create", "replace"):
            continue
        directory = os.path.dirname(item["target"])
        os.makedirs(directory, mode=0o700, exist_ok=True)
        tmp = os.path.join(directory, f"{TMP_PREFIX}{os.path.basename(item['target'])}.{os.getpid()}")
        try:
            shutil.copyfile(item["source"], tmp)
            os.chmod(tmp, int(item["mode"], 8))
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, item["target"])
        finally:
            unlink_quiet(tmp)
        fsync_dir(directory)
    return done


def created_at(manifest):
    """The copy's time (datetime) or None."""
    try:
        return datetime.datetime.strptime(manifest.get("created_at") or "", "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc
        )
    except ValueError:
        return None
