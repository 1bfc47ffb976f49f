# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection may write into the PEC's internals on THIS server: a schema profile per capability and a
read-only probe of the live database, run before any write (check mode included).

Every capability that writes into the PEC's tables (``CAPABILITIES``) lists, per known version range, the tables,
columns (with their types where a wrong type would corrupt data), configuration keys of ``tb_config_sistema`` and
rows it relies on. The probe reads ``information_schema`` and runs SELECTs only. A capability whose profile does not
match is refused before anything changes, with a message naming what is missing and the manual path in the PEC's
UI (from the Ministry's manual, docs/pec-facts.md; to be confirmed on a real server). Where a flow cannot do without
it, the refused capability becomes a manual step the operator confirms (module_utils manual_steps).

The only profile known today is the one the PEC test double models (4.2.x to 4.5.x, names from pec-facts); it is
unconfirmed on a real 4.5.2, which is exactly why the probe runs on every server before every write. The 5.x schema
seen on 5.5 is deliberately not a profile here: every write on it is refused with the manual path. The collection's
READS of the identity and profile tables work on both schemas through module_utils pec_schema.
"""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, compare_versions, normalize_version
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import database_version, sql_literal, table_columns

INT = ("smallint", "integer", "bigint", "numeric")
TEXT = ("text", "character varying", "character")
STAMP = ("timestamp without time zone", "timestamp with time zone")
DAY = ("date", *STAMP)
ANY = None

_LOTE = {
    "co_seq_lote_transp": INT,
    "dt_geracao": STAMP,
    "dt_inicio_periodo": DAY,
    "dt_fim_periodo": DAY,
    "co_situacao": INT,
    "qt_registros": INT,
    "dt_envio": STAMP,
}
_DOUBLE_4X = ("4.2.0", "5.0.0")
_DOUBLE_SOURCE = "the PEC test double's schema (names from docs/pec-facts.md), unconfirmed on a real PEC"

# capability -> what it does, the manual path, and its profiles (versions [min, max), tables, keys, rows).
CAPABILITIES = {
    "create_lotes": {
        "what": "create lotes in tb_lote_transp and tie tb_dado_transp rows to them",
        "manual": "Transmissão de dados → Gerar novo lote → Salvar em arquivo",
        "profiles": [
            {
                "versions": _DOUBLE_4X,
                "source": _DOUBLE_SOURCE,
                "tables": {
                    "tb_dado_transp": {
                        "co_seq_dado_transp": INT,
                        "nu_uuid": ANY,
                        "co_unidade_saude": INT,
                        "dt_registro": DAY,
                        "co_lote_transp": INT,
                        "ds_dado": ("bytea",),
                    },
                    "tb_lote_transp": _LOTE,
                    "tb_situacao_lote_transp": {"co_situacao": INT, "no_situacao": TEXT},
                    "tb_unidade_saude": {"co_seq_unidade_saude": INT, "nu_cnes": TEXT},
                },
                "situations": ("generated",),
            }
        ],
    },
    "mark_lotes_sent": {
        "what": "mark lotes sent in tb_lote_transp (co_situacao, dt_envio)",
        "manual": "Transmissão de dados (o PEC marca como enviado o lote que ele mesmo transmite)",
        "profiles": [
            {
                "versions": _DOUBLE_4X,
                "source": _DOUBLE_SOURCE,
                "tables": {
                    "tb_lote_transp": {"co_seq_lote_transp": INT, "co_situacao": INT, "dt_envio": STAMP},
                    "tb_situacao_lote_transp": {"co_situacao": INT, "no_situacao": TEXT},
                },
                "situations": ("sent",),
            }
        ],
    },
    "change_profiles": {
        "what": "give every lotação one view-only profile and remove administrator roles",
        "manual": (
            "Administração → Perfis: criar o perfil de visualização; Profissionais → Lotações (de cada profissional) → "
            "Perfis: trocar pelo perfil de visualização e tirar o de administrador (menos a conta de emergência)"
        ),
        "profiles": [
            {
                "versions": _DOUBLE_4X,
                "source": _DOUBLE_SOURCE,
                "tables": {
                    "tb_usuario": {"co_seq_usuario": INT, "ds_login": TEXT},
                    "tb_prof": {"co_seq_prof": INT, "co_usuario": INT, "no_profissional": TEXT},
                    "tb_ator_papel": {"co_seq_ator_papel": INT, "co_prof": INT, "tp_ator_papel": TEXT},
                    "tb_lotacao": {"co_ator_papel": INT, "co_cbo": INT, "co_unidade_saude": INT},
                    "tb_cbo": {"co_cbo": INT, "co_cbo_2002": TEXT},
                    "tb_unidade_saude": {"co_seq_unidade_saude": INT, "nu_cnes": TEXT},
                    "tb_perfil": {
                        "co_seq_perfil": INT,
                        "no_perfil": TEXT,
                        "tp_perfil": TEXT,
                        "st_ativo": ("boolean",),
                        "st_padrao": ("boolean",),
                    },
                    "tb_recurso": {"co_recurso": INT, "no_recurso": TEXT},
                    "tb_perfil_recurso": {"co_perfil": INT, "co_recurso": INT, "tp_operacao": TEXT},
                    "rl_ator_papel_perfil": {"co_ator_papel": INT, "co_perfil": INT},
                    "tb_adm_geral": {"co_ator_papel": INT},
                    "tb_adm_municipal": {"co_ator_papel": INT, "co_ibge_municipio": TEXT},
                },
            }
        ],
    },
    "transmission_off": {
        "what": "turn the automatic transmission off (tb_config_sistema)",
        "manual": "Transmissão de dados → Configurações → desativar o envio automático",
        "profiles": [
            {
                "versions": _DOUBLE_4X,
                "source": _DOUBLE_SOURCE,
                "tables": {"tb_config_sistema": {"co_config_sistema": TEXT, "ds_texto": TEXT}},
                "keys": ("TRANSMISSAO_AUTOMATICA",),
            }
        ],
    },
    "cnes_profile_reset_off": {
        "what": "stop a CNES import from resetting profiles (tb_config_sistema)",
        "manual": 'CNES → Importar CNES → desmarcar "Atualizar perfis ao importar CNES" (em toda importação)',
        "profiles": [
            {
                "versions": _DOUBLE_4X,
                "source": _DOUBLE_SOURCE,
                "tables": {"tb_config_sistema": {"co_config_sistema": TEXT, "ds_texto": TEXT}},
                "keys": ("ATUALIZAR_PERFIS_IMPORTACAO_CNES",),
            }
        ],
    },
}

# Capabilities of one flow, not part of every server's verdicts (pec_info, the report): probed by that flow only,
# with the same rules (a survey of a real PEC of this version must match under the trust ``survey``).
FLOW_CAPABILITIES = {
    "installation_link": {
        "what": "point the installation link (LINKINSTALACAO in tb_config_sistema) at this server",
        "manual": (
            "entrar como Administrador da Instalação → Configurações da instalação → aba Servidores → "
            "Link da instalação"
        ),
        "profiles": [
            {
                # the key and the table are seen on real 4.x to 5.5 servers (docs/pec-facts.md, third review); a
                # restored base keeps the old host there. Written with the application stopped (it caches settings).
                "versions": ("4.2.0", "6.0.0"),
                "source": "tb_config_sistema.LINKINSTALACAO as real 4.x-5.5 servers show it (docs/pec-facts.md)",
                "tables": {"tb_config_sistema": {"co_config_sistema": TEXT, "ds_texto": TEXT}},
                "keys": ("LINKINSTALACAO",),
            }
        ],
    },
}

# Not a capability of its own: what any write of tb_config_sistema needs (pec_config without a capability).
CONFIG_TABLE = {
    "what": "set keys of tb_config_sistema",
    "manual": "Administração (telas de configuração do PEC)",
    "profiles": [
        {
            "versions": _DOUBLE_4X,
            "source": _DOUBLE_SOURCE,
            "tables": {"tb_config_sistema": {"co_config_sistema": TEXT, "ds_texto": TEXT}},
        }
    ],
}
_SPECS = {**CAPABILITIES, **FLOW_CAPABILITIES, "config_table": CONFIG_TABLE}

DEFAULT_SITUATIONS = {"generated": "GERADO", "sent": "ENVIADO"}
TRUSTS = ("survey", "double")


def schema_trust_argument_spec():
    """The options of plugins/doc_fragments/schema_trust.py."""
    return dict(
        schema_trust=dict(type="str", choices=list(TRUSTS), default="survey"),
        capability_profiles=dict(type="list", elements="dict", default=[]),
    )


class CompatRefused(PecError):
    """A capability refused on this server; ``details`` carries the probe result."""


class Probe:
    """Read-only look at one live database; each catalog read runs at most once per probe."""

    def __init__(self, client, version_key="VERSAOBANCODADOS", situations=None, trust="survey", surveyed=None):
        if trust not in TRUSTS:
            raise PecError(f"unknown schema_trust {trust!r}: use survey or double")
        self.client = client
        self.trust = trust
        self.surveyed = [p for p in (surveyed or []) if isinstance(p, dict)]
        self.version_key = version_key
        self.situations = {**DEFAULT_SITUATIONS, **(situations or {})}
        self._columns = None
        self._version = False
        self._keys = {}
        self._situation_names = None

    def columns(self):
        """{table: {column: data_type}} of every table any profile names, in the current schema."""
        if self._columns is None:
            tables = {t for cap in _SPECS.values() for p in cap["profiles"] for t in p["tables"]}
            self._columns = table_columns(self.client, tables)
        return self._columns

    def version(self):
        if self._version is False:
            ok = "co_config_sistema" in self.columns().get("tb_config_sistema", {})
            self._version = database_version(self.client, self.version_key) if ok else None
        return self._version

    def keys_present(self, keys):
        wanted = [k for k in keys if k not in self._keys]
        if wanted:
            rows = self.client.query(
                "SELECT co_config_sistema FROM tb_config_sistema WHERE co_config_sistema IN ("
                + ", ".join(sql_literal(k) for k in wanted)
                + ")"
            )
            found = {r[0] for r in rows}
            self._keys.update({k: k in found for k in wanted})
        return {k for k in keys if self._keys[k]}

    def situation_names(self):
        if self._situation_names is None:
            rows = self.client.query("SELECT no_situacao FROM tb_situacao_lote_transp")
            self._situation_names = {r[0] for r in rows}
        return self._situation_names

    def _missing(self, profile, keys):
        """Names of what this live schema lacks for one profile (empty: it matches)."""
        return profile_missing(profile, self.columns(), self.keys_present, self.situation_names, self.situations, keys)

    def check(self, capability, keys=None):
        """{capability, supported, version, profile, missing, manual, reason} for this server; never writes.

        ``keys``: the tb_config_sistema keys the caller is about to set (default: the profile's). With the trust
        ``survey`` a capability the built-in (test double's) profile supports also needs a surveyed profile of this
        PEC version whose schema, on the capability's tables, is exactly this server's (``surveyed`` in the verdict).
        """
        verdict = choose_verdict(capability, self.version(), lambda profile: self._missing(profile, keys))
        if (
            verdict["supported"]
            and self.trust == "survey"
            and (capability in CAPABILITIES or capability in FLOW_CAPABILITIES)
        ):
            return self._surveyed_verdict(capability, verdict)
        return verdict

    def _surveyed_verdict(self, capability, verdict):
        version = self.version()
        closest = None
        for profile in self.surveyed:
            if not version or normalize_version(profile.get("pec_version")) != normalize_version(version):
                continue
            differences = matches_surveyed(capability, profile, self.columns())
            if not differences:
                return {**verdict, "surveyed": profile.get("source") or "survey"}
            if closest is None or len(differences) < len(closest[1]):
                closest = (profile.get("source") or "survey", differences)
        missing = [
            f"a survey of a real PEC {version or '(version unknown)'} whose schema matches this server's "
            "(capability_profiles, docs/survey.md): the collection's profile for it describes the test double"
        ]
        if closest:
            missing.append(f"({closest[0]} differs: {'; '.join(closest[1][:3])})")
        spec = _SPECS[capability]
        refused = _verdict(capability, spec, version, None, missing)
        refused["profile"] = verdict["profile"]
        refused["reason"] = (
            f"{capability} refused on this server (PEC {version or 'of unknown version'}): the collection would "
            f"{spec['what']}, but its schema profile describes the test double and no survey of a real PEC of this "
            f"version matches this server's schema {' '.join(missing[1:])}(capability_profiles, docs/survey.md). "
            f"Nothing was changed. Do it by hand in the PEC: {spec['manual']}"
        )
        return refused

    def require(self, capability, keys=None):
        """The check, raising CompatRefused (nothing written) when the capability is not supported."""
        verdict = self.check(capability, keys)
        if not verdict["supported"]:
            raise CompatRefused(verdict["reason"], compat=verdict)
        return verdict

    def report(self):
        """Every capability's verdict (what pec_info shows)."""
        return {name: self.check(name) for name in CAPABILITIES}


def missing_in_schema(profile, schema_columns):
    """What ``schema_columns`` ({table: {column: data_type}}, as information_schema names them) lacks of one
    profile's tables, columns and types: ``table T``, ``column T.C``, ``column T.C of type A/B (it is X)``; empty
    when they match. Pure: the live probe and a surveyed schema (module_utils pec_capability) both use it."""
    missing = []
    for table, columns in profile["tables"].items():
        if table not in schema_columns:
            missing.append(f"table {table}")
            continue
        for column, types in columns.items():
            found = schema_columns[table].get(column)
            if found is None:
                missing.append(f"column {table}.{column}")
            elif types is not ANY and found not in types:
                missing.append(f"column {table}.{column} of type {'/'.join(types)} (it is {found})")
    return missing


def profile_missing(profile, schema_columns, keys_present, situation_names, situations, keys=None):
    """Everything one profile needs that a schema lacks: tables, columns and types (``missing_in_schema``), then,
    only when those match, the ``tb_config_sistema`` keys (``keys``, default the profile's; ``keys_present(wanted)``
    -> the set of those present) and the lote situations (``situations``: role -> name; ``situation_names()`` -> the
    names of ``tb_situacao_lote_transp``). The callables are only called when needed."""
    missing = missing_in_schema(profile, schema_columns)
    if missing:
        return missing
    wanted_keys = list(keys if keys is not None else profile.get("keys", ()))
    if wanted_keys:
        present = keys_present(wanted_keys)
        missing.extend(f"key {k} in tb_config_sistema" for k in wanted_keys if k not in present)
    names = [situations[s] for s in profile.get("situations", ())]
    if names:
        live_names = situation_names()
        missing.extend(f"situation {n!r} in tb_situacao_lote_transp" for n in names if n not in live_names)
    return missing


def choose_verdict(capability, version, missing_for):
    """The verdict of one capability for a schema of PEC ``version`` (None: unknown): the profiles of that version
    (all of them when it is unknown) are tried with ``missing_for(profile)`` -> list of what is missing, and the
    first that matches wins, else the closest one is named. Pure: the schema is behind ``missing_for``."""
    spec = _SPECS[capability]
    candidates = [p for p in spec["profiles"] if _in_range(version, p["versions"])] if version else []
    if version and not candidates:
        known = ", ".join(f"{p['versions'][0]} to before {p['versions'][1]}" for p in spec["profiles"])
        missing = [f"a schema profile for PEC {version} (known: {known})"]
        return _verdict(capability, spec, version, None, missing)
    best = None
    for profile in candidates or spec["profiles"]:
        missing = missing_for(profile)
        if not missing:
            return _verdict(capability, spec, version, profile, [])
        if best is None or len(missing) < len(best[1]):
            best = (profile, missing)
    return _verdict(capability, spec, version, best[0], best[1])


def capability_tables(capability):
    """The tables any profile of one capability names, sorted."""
    return sorted({table for profile in _SPECS[capability]["profiles"] for table in profile["tables"]})


def matches_surveyed(capability, surveyed_profile, live_columns):
    """Where the live schema differs from the one a survey saw, on the tables of one capability: a list of
    differences (a table or column present on one side only, a column whose type differs); empty when this server
    has, on those tables, exactly the schema of the survey.

    ``surveyed_profile``: a capability profile (module_utils pec_capability; its ``tables`` hold only the tables the
    survey found, ``{table: {column: data_type}}``); ``live_columns``: ``Probe.columns()`` of the live database."""
    surveyed = surveyed_profile.get("tables") or {}
    differences = []
    for table in capability_tables(capability):
        seen, live = surveyed.get(table), live_columns.get(table)
        if seen is None and live is None:
            continue
        if seen is None or live is None:
            where = "the live schema" if seen is None else "the surveyed schema"
            differences.append(f"table {table} only in {where}")
            continue
        for column in sorted(set(seen) | set(live)):
            if column not in live:
                differences.append(f"column {table}.{column} only in the surveyed schema")
            elif column not in seen:
                differences.append(f"column {table}.{column} only in the live schema")
            elif seen[column] != live[column]:
                differences.append(f"column {table}.{column} is {live[column]} (the survey saw {seen[column]})")
    return differences


def _in_range(version, bounds):
    try:
        return compare_versions(version, bounds[0]) >= 0 and compare_versions(version, bounds[1]) < 0
    except (PecError, ValueError):
        return False


def _verdict(capability, spec, version, profile, missing):
    supported = not missing
    reason = None
    if not supported:
        reason = (
            f"{capability} refused on this server (PEC {version or 'of unknown version'}): the collection would "
            f"{spec['what']}, but the database has no {', '.join(missing)}. Nothing was changed. "
            f"Do it by hand in the PEC: {spec['manual']}"
        )
    return {
        "capability": capability,
        "supported": supported,
        "version": version,
        "profile": f"{profile['versions'][0]}-{profile['versions'][1]} ({profile['source']})" if profile else None,
        "missing": missing,
        "manual": spec["manual"],
        "reason": reason,
    }
