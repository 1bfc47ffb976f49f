# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state a manager needs, kept on the server: one JSON file per concern in the local facts directory.

Every role, module or job that produces a result a manager reads records it here, so a plain ``site.yml`` run
(pec_info) sees all of it and the report never depends on what else ran in the same play.

A state file is ``<facts_dir>/sesdf_esus_<concern>.fact``, root-only (0600), written atomically, as::

    {"concern": "hardening", "produced_at": "...Z", "confirmed_at": "...Z", "data": {...}}

``produced_at`` is when ``data`` last changed; ``confirmed_at`` when a producer last ran and found the same
result. A producer run with unchanged data rewrites the file only when ``confirmed_at`` is older than
``refresh_hours``: a second run the same hour changes nothing (Molecule's idempotence, honest ``changed``), and
the age a report shows is never more than ``refresh_hours`` off.

Concerns recorded before this format existed (the backup status, the migration record, the CNES import) keep
their own layout; :data:`CONCERNS` says where their date is, and the reader gives every concern the same shape.

The reader also says what the report needs to trust a file (``uid``, ``gid``, ``mode`` of an existing one) and,
when it cannot be taken as read, why (``error_kind``): ``unreadable`` (cannot be read, or not JSON), ``truncated``
(empty, or it ends before its JSON document does: written halfway), ``not_object`` (JSON, but not an object) or
``date`` (no valid date where ``error_field`` says, e.g. a number where a time stamp belongs).
"""

from __future__ import annotations

import copy
import json
import os
import stat

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import read_json, write_json
from ansible_collections.sesdf.esus.plugins.module_utils._timeutil import iso, parse_ts, utcnow
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

STATE_MODE = 0o600
PREFIX = "sesdf_esus_"
SUFFIX = ".fact"

# concern -> cadence (hours after which the state is stale; None: never stale) and, for layouts older than the
# envelope, the dotted key of the date the result was produced (or the keys, the first one present wins).
CONCERNS = {
    "backup": {"cadence_hours": 26, "legacy_date": "last_success"},
    "migration": {"cadence_hours": None, "legacy_date": "date"},
    # an import sent through the API whose end is not verifiable yet has no last_import: its staging date stands
    "cnes": {"cadence_hours": 24 * 8, "legacy_date": ("last_import.date", "pending_manual.staged_at")},
    "hardening": {"cadence_hours": 24 * 8},
    "maintenance": {"cadence_hours": 24 * 8, "legacy_date": "finished_at"},
    "profiles": {"cadence_hours": 24 * 32},
    "lotes": {"cadence_hours": 24 * 8},
    "upgrade": {"cadence_hours": None},
    "readiness": {"cadence_hours": 24 * 32},
    "central_profiles": {"cadence_hours": 24 * 32},
    "manual_steps": {"cadence_hours": None},
    # written on the UBS by backup_schedule from the backup host's retention (borg_retention): never stale, a finding
    # stays until a run finds the repository whole again
    "borg_retention": {"cadence_hours": None},
    # the rebuilds of this server (sesdf.esus.rebuild): its steps and its history, never stale
    "rebuild": {"cadence_hours": None},
}


def state_path(facts_dir, concern):
    return os.path.join(facts_dir, f"{PREFIX}{concern}{SUFFIX}")


def _dotted(document, key):
    value = document
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _is_envelope(document):
    return isinstance(document, dict) and "data" in document and "produced_at" in document


def new_document(concern, data, previous=None, now=None, refresh_hours=1.0, history=0):
    """(document to write or None when the file is current, the document as it will be)."""
    now = now or utcnow()
    stamp = iso(now)
    prev = previous if _is_envelope(previous) else None
    if history:
        past = list((prev or {}).get("data", {}).get("history", [])) if prev else []
        last = (prev or {}).get("data", {}).get("last") if prev else None
        if last != data:
            past = ([last] if last is not None else []) + past
        data = {"last": data, "history": past[: max(history - 1, 0)]}
    if prev and prev.get("concern") == concern and prev.get("data") == data:
        confirmed = parse_ts(prev.get("confirmed_at"))
        if confirmed and (now - confirmed).total_seconds() < refresh_hours * 3600 and confirmed <= now:
            return None, prev
        document = dict(prev, confirmed_at=stamp)
        return document, document
    document = {"concern": concern, "produced_at": stamp, "confirmed_at": stamp, "data": copy.deepcopy(data)}
    return document, document


def write_state(facts_dir, concern, data, now=None, refresh_hours=1.0, history=0, check_mode=False):
    """Record ``data`` for ``concern``: (changed, before, after). Raises PecError (nothing lost) on a write error.

    An unreadable previous file is replaced (it is a record of the last result, which this call supersedes);
    ``before`` then carries its error.
    """
    path = state_path(facts_dir, concern)
    try:
        before = read_json(path, f"state file of {concern}")
    except PecError as exc:
        before = {"error": exc.msg}
    to_write, after = new_document(concern, data, before, now=now, refresh_hours=refresh_hours, history=history)
    if to_write is None:
        return False, before, after
    if not check_mode:
        if not os.path.isdir(facts_dir):
            os.makedirs(facts_dir, mode=0o755, exist_ok=True)
        write_json(path, to_write, mode=STATE_MODE)
    return True, before, after


def _legacy_date(document, keys):
    """(key, value) of a layout older than the envelope: the first of ``keys`` present in ``document``."""
    keys = (keys,) if isinstance(keys, str) else tuple(keys or ())
    for key in keys:
        value = _dotted(document, key)
        if value is not None:
            return key, value
    return (keys[0] if keys else "produced_at"), None


def _entry(concern, document, spec, now, cadence_hours, path, facts=None):
    entry = {
        "present": document is not None,
        "path": path,
        "produced_at": None,
        "confirmed_at": None,
        "age_hours": None,
        "cadence_hours": cadence_hours,
        "stale": False,
        "data": None,
    }
    entry.update(facts or {})
    if document is None:
        return entry
    if isinstance(document, _Unreadable):
        entry.update(error=document.msg, error_kind=document.kind)
        return entry
    if not isinstance(document, dict):
        entry.update(error="not a JSON object", error_kind="not_object", error_type=type(document).__name__)
        return entry
    if _is_envelope(document):
        entry["data"] = document.get("data")
        field, raw = "produced_at", document.get("produced_at")
        produced = parse_ts(raw) if isinstance(raw, str) else None
        confirmed_raw = document.get("confirmed_at")
        confirmed = (parse_ts(confirmed_raw) if isinstance(confirmed_raw, str) else None) or produced
    else:
        entry["data"] = document
        field, raw = _legacy_date(document, spec.get("legacy_date"))
        produced = parse_ts(raw) if isinstance(raw, str) else None
        confirmed = produced
    entry["produced_at"] = iso(produced)
    entry["confirmed_at"] = iso(confirmed)
    if confirmed is None:
        entry["stale"] = cadence_hours is not None
        entry["error"] = "the state has no valid date: it cannot be taken as current"
        entry.update(error_kind="date", error_field=field, error_type=type(raw).__name__)
        return entry
    age = round((now - confirmed).total_seconds() / 3600.0, 1)
    entry["age_hours"] = age
    entry["stale"] = cadence_hours is not None and age > cadence_hours
    return entry


class _Unreadable:
    """A state file that exists but cannot be taken as read: why (``kind``) and the message."""

    def __init__(self, kind, msg):
        self.kind, self.msg = kind, msg


def _read(path, what):
    """(document, file facts) of a state file: (None, {}) when absent; an :class:`_Unreadable` document when it
    exists but cannot be read or parsed. The facts (``uid``, ``gid``, ``mode`` as octal text) come from the one
    ``stat`` that also tells whether the file exists. Never raises."""
    advice = "do not delete it: inspect it and fix or restore it"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, {}
    except OSError as exc:
        return _Unreadable("unreadable", f"{what} {path} is unreadable ({exc.strerror or exc}); {advice}"), {}
    facts = {"uid": st.st_uid, "gid": st.st_gid, "mode": f"{stat.S_IMODE(st.st_mode):04o}"}
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, ValueError) as exc:
        return _Unreadable("unreadable", f"{what} {path} is unreadable ({exc}); {advice}"), facts
    try:
        return json.loads(text), facts
    except ValueError as exc:
        body = text.rstrip()
        if not body or not body.endswith(("}", "]")):
            why = "it is empty" if not body else "it ends before its JSON document does"
            msg = f"{what} {path} is unreadable: {why} (truncated: written halfway?); {advice}"
            return _Unreadable("truncated", msg), facts
        return _Unreadable("unreadable", f"{what} {path} is unreadable ({exc}); {advice}"), facts


def read_states(facts_dir, cadences=None, paths=None, now=None, concerns=None):
    """Every concern's state as ``{concern: {present, path, produced_at, confirmed_at, age_hours, cadence_hours,
    stale, data[, uid, gid, mode][, error, error_kind[, error_field, error_type]]}}``. Never raises: a missing file
    is ``present: false``, one that cannot be taken as read has ``error`` and ``error_kind`` (module docstring).

    ``cadences`` overrides :data:`CONCERNS`' cadence per concern (hours, or None for never stale); ``paths``
    overrides a concern's file (a job that keeps its status elsewhere).
    """
    now = now or utcnow()
    cadences = cadences or {}
    paths = paths or {}
    states = {}
    for concern in concerns or CONCERNS:
        spec = CONCERNS.get(concern, {})
        path = paths.get(concern) or state_path(facts_dir, concern)
        document, facts = _read(path, f"state file of {concern}")
        cadence = cadences.get(concern, spec.get("cadence_hours"))
        states[concern] = _entry(concern, document, spec, now, cadence, path, facts)
    return states
