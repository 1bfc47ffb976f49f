# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A survey bundle (module_utils pec_survey) turned into a capability profile: the schema the surveyed PEC has of
the tables the collection uses, its configuration key names, its transmission tables, nodes and situations, and the
verdict of every write capability of :mod:`pec_compat` on that schema, by the rules the live probe applies
(``profile_missing`` and ``choose_verdict``, shared with ``Probe``).

The profile (``format`` 1)::

    {"format": 1, "source": "survey <surveyed_at>, PEC <version>", "pec_version": ..., "database_surveyed": bool,
     "tables": {table: {column: data_type}},                     # only the tables the survey found
     "config_keys": [...],                                        # names of tb_config_sistema keys
     "transmission": {"nodes": [{column: value}], "node_situations": [{column: value}],
                      "lote_situations": [...], "tables_present": [...], "tables_absent": [...]},
     "capabilities": {name: {"supported": bool, "missing": [...], "profile": ...}}}

Pure functions on plain data, standard library only: the filter ``sesdf.esus.capability_profile`` runs them on the
control node.
"""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils.pec_compat import (
    CAPABILITIES,
    DEFAULT_SITUATIONS,
    choose_verdict,
    profile_missing,
)
from ansible_collections.sesdf.esus.plugins.module_utils.pec_survey import TRANSMISSION_TABLES

FORMAT = 1
BUNDLE_FORMAT = 1
NOT_SURVEYED = "the survey could not read the database (see the bundle's errors)"


def check_bundle(bundle):
    """Raise ValueError unless ``bundle`` is a survey bundle this code reads."""
    if not isinstance(bundle, dict) or "schema" not in bundle or "pec" not in bundle:
        raise ValueError("not a survey bundle of sesdf.esus.pec_survey (no schema or pec)")
    if bundle.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"survey bundle format {bundle.get('format')!r} is not supported (expected {BUNDLE_FORMAT})")


def database_surveyed(bundle):
    """Whether the survey read the database's schema (an empty schema: it could not)."""
    return bool(bundle.get("schema"))


def surveyed_columns(bundle):
    """{table: {column: data_type}} of the tables the survey found (as ``Probe.columns()`` gives a live schema)."""
    out = {}
    for table, entry in (bundle.get("schema") or {}).items():
        if entry is not None:
            out[table] = {column: info.get("type") for column, info in (entry.get("columns") or {}).items()}
    return out


def rows_as_dicts(reference_entry):
    """The rows of one reference table of the bundle as [{column: value}]; [] for an absent table."""
    if not reference_entry:
        return []
    columns = reference_entry.get("columns") or []
    return [
        {c: (row[i] if i < len(row) else None) for i, c in enumerate(columns)}
        for row in reference_entry.get("rows") or []
    ]


def situation_names(bundle):
    """``no_situacao`` of every row of ``tb_situacao_lote_transp`` the survey read."""
    rows = rows_as_dicts((bundle.get("reference") or {}).get("tb_situacao_lote_transp"))
    return {r["no_situacao"] for r in rows if r.get("no_situacao") is not None}


def capability_verdicts(bundle, situations=None):
    """{capability: {supported, missing, profile}} of every write capability on the surveyed schema."""
    if not database_surveyed(bundle):
        return {name: {"supported": False, "missing": [NOT_SURVEYED], "profile": None} for name in CAPABILITIES}
    columns = surveyed_columns(bundle)
    keys = set((bundle.get("reference") or {}).get("config_sistema_keys") or ())
    names = situation_names(bundle)
    roles = {**DEFAULT_SITUATIONS, **(situations or {})}
    version = (bundle.get("pec") or {}).get("versions", {}).get("database")

    def missing_for(profile):
        return profile_missing(profile, columns, lambda wanted: {k for k in wanted if k in keys}, lambda: names, roles)

    verdicts = {}
    for name in CAPABILITIES:
        verdict = choose_verdict(name, version, missing_for)
        verdicts[name] = {k: verdict[k] for k in ("supported", "missing", "profile")}
    return verdicts


def transmission(bundle):
    """Nodes, node situations, lote situations and which transmission tables exist in the surveyed PEC."""
    schema = bundle.get("schema") or {}
    reference = bundle.get("reference") or {}
    surveyed = database_surveyed(bundle)
    present = {t for t in TRANSMISSION_TABLES if schema.get(t) is not None}
    present.update(reference.get("transmission_tables") or ())
    return {
        "nodes": rows_as_dicts(reference.get("tb_nodo")),
        "node_situations": rows_as_dicts(reference.get("tb_situacao_lote_transp_nodo")),
        "lote_situations": sorted(situation_names(bundle)),
        "tables_present": sorted(present),
        "tables_absent": sorted(t for t in TRANSMISSION_TABLES if surveyed and schema.get(t) is None),
    }


def capability_profile(bundle, situations=None):
    """The capability profile of one survey bundle (see the module's docstring). ``situations``: the lote situation
    names per role (``generated``, ``sent``) when they differ from pec_compat's defaults."""
    check_bundle(bundle)
    version = (bundle.get("pec") or {}).get("version")
    return {
        "format": FORMAT,
        "source": f"survey {bundle.get('surveyed_at')}, PEC {version or 'of unknown version'}",
        "pec_version": version,
        "database_surveyed": database_surveyed(bundle),
        "tables": surveyed_columns(bundle),
        "config_keys": sorted((bundle.get("reference") or {}).get("config_sistema_keys") or ()),
        "transmission": transmission(bundle),
        "capabilities": capability_verdicts(bundle, situations),
    }
