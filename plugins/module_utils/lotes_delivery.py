# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the lotes go and how one gets there: the destination (a directory or rsync/SSH, module_utils _transfer) and
the one delivery step both modes use (copy unless already there, sha256 read back, the ledger entry records it).

Python stdlib only. A lote counts as delivered only when the sha256 of the file AT THE DESTINATION equals the one
recorded; so a lote is sent again until it is verified and never again once it is (unless the copy at the
destination is later found altered).
"""

from __future__ import annotations

import re

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import sha256_file
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import local_now_iso
from ansible_collections.sesdf.esus.plugins.module_utils._transfer import PathDestination, RsyncDestination
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

DEFAULT_FILE_PATTERN = "lote-{cnes}-{id}.zip"


def lote_names(file_pattern=DEFAULT_FILE_PATTERN):
    """The regex of the names a lote and its manifest get at the destination (from ``file_pattern``)."""

    def body(pattern):
        return "[A-Za-z0-9._-]+".join(re.escape(part) for part in re.split(r"\{[a-z_]+\}", pattern))

    base = file_pattern[:-4] if file_pattern.endswith(".zip") else file_pattern
    return f"{body(file_pattern)}|{body(base)}\\.manifest\\.json"


def make_destination(spec, file_pattern=DEFAULT_FILE_PATTERN, ours=None):
    """Destination from a dict: {type: path, path} or {type: rsync, host, path, user, port, ssh_key, known_hosts}.

    A path destination removes the stale partials of this collection's lotes left there by a killed copy
    (``ours``: the regex of their final names; default the names ``file_pattern`` gives)."""
    if not spec or not spec.get("type"):
        raise PecError("no destination for the lotes: set lotes_export_destination (type path or rsync)")
    kind = spec["type"]
    if kind == "path":
        if not spec.get("path"):
            raise PecError("destination type path needs 'path'")
        return PathDestination(spec["path"], bool(spec.get("require_mount")), ours=ours or lote_names(file_pattern))
    if kind == "rsync":
        if not spec.get("host") or not spec.get("path"):
            raise PecError("destination type rsync needs 'host' and 'path'")
        return RsyncDestination(
            spec["host"],
            spec["path"],
            spec.get("user"),
            spec.get("port") or 22,
            spec.get("ssh_key"),
            spec.get("known_hosts"),
            spec.get("timeout") or 60,
            spec.get("strict_host_key_checking", True),
        )
    raise PecError(f"unknown destination type {kind!r}: use path or rsync")


def new_result(**extra):
    """The counts of one export run, either mode (``extra``: the mode's own fields)."""
    return {
        "exported": 0,
        "sent": 0,
        "confirmed": 0,
        "resent": 0,
        "pending": 0,
        "errors": [],
        "lotes": [],
        "changed": False,
        **extra,
    }


def destination_ready(dest, transfer, to_send, reverify, result, ref):
    """Whether this run reaches the destination (checked only when there is something to send or to reverify); a
    destination not reachable is an error of the run only when something waits to be sent (``ref``: its key)."""
    if not transfer or not (to_send or reverify):
        return False
    try:
        dest.check()
    except PecError as exc:
        if to_send:
            result["errors"].append({ref: None, "msg": exc.msg})
        return False
    return True


def deliver(
    dest,
    entry,
    local,
    name,
    result,
    save,
    ref,
    resend=False,
    check_mode=False,
    manifest=None,
    check_on_arrival=False,
    log=None,
):
    """One lote to ``name`` at ``dest``: copied unless the copy there already has the entry's sha256 (a run killed
    after the copy), its manifest beside it (``manifest``: (local path, name), db mode), the sha256 read back.

    The ledger ``entry`` records the attempt and then the confirmation or the error (``save(entry)`` writes it, never
    in check mode); ``result`` counts ``sent``/``confirmed`` and lists the error under ``ref`` ({"lote": id} or
    {"file": name}). A copy checked on arrival (``check_on_arrival``, file mode) leaves no bad file under the final
    name and a sha256 sidecar beside it. Returns True when the lote is confirmed (in check mode: when it already is
    at the destination).
    """
    label = entry["file"]
    try:
        if resend or dest.remote_sha256(name) != entry["sha256"]:
            if check_mode:
                result["sent"] += 1
                return False
            entry["attempts"] = entry.get("attempts", 0) + 1
            entry["sent_at"] = local_now_iso()
            if check_on_arrival:
                dest.put(local, name, expected_sha256=entry["sha256"], what=f"cópia do lote {label}")
            else:
                dest.put(local, name)
            result["sent"] += 1
            result["changed"] = True
        if manifest is not None:
            mlocal, mname = manifest
            if dest.remote_sha256(mname) != sha256_file(mlocal):
                if check_mode:
                    return False
                dest.put(mlocal, mname)
                result["changed"] = True
        arrived = dest.remote_sha256(name)
        if arrived != entry["sha256"]:
            raise PecError(
                f"o lote {label} chegou ao destino com sha256 {arrived}, esperado {entry['sha256']}; "
                "será enviado de novo na próxima execução"
            )
    except PecError as exc:
        entry["last_error"] = exc.msg
        result["errors"].append({**ref, "msg": exc.msg})
        if not check_mode:
            save(entry)
        return False
    if check_mode:
        return True
    entry["confirmed_at"] = local_now_iso()
    entry["last_error"] = None
    entry["destination"] = dest.label
    save(entry)
    result["confirmed"] += 1
    result["changed"] = True
    if log:
        log(f"lote {label} confirmado em {dest.label} como {name}")
    return True
