# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's READS of the PEC's identity and profile tables, on whichever schema the live database has.

The PEC test double's 4.x schema and a real 5.5 (docs/pec-facts.md, third review, "Profiles") hold the same facts
under different names:

=========================  =====================================  ============================================
field                      4.x (the double)                       5.x (seen on 5.5)
=========================  =====================================  ============================================
``professional_name``      ``tb_prof.no_profissional``            ``tb_prof.no_civil_profissional``
``role_type``              ``tb_ator_papel.tp_ator_papel``        ``tb_ator_papel.no_tipo_ator_papel``
``profile_type``           ``tb_perfil.tp_perfil``                ``tb_perfil.type``
``profile_active``         ``tb_perfil.st_ativo`` (boolean)       ``tb_perfil.situation`` (integer 0/1)
``lotacao_active``         ``tb_lotacao.st_ativo`` (boolean)      ``tb_lotacao.st_ativo`` (integer 0/1)
``municipal_admin_place``  ``tb_adm_municipal.co_ibge_municipio``  ``tb_adm_municipal.co_localidade`` (the PEC's
                           (IBGE code)                            internal id of ``tb_localidade``)
``grant_resource``         ``tb_recurso.no_recurso`` through      ``tb_perfil_recurso.no_recurso``
                           ``tb_perfil_recurso.co_recurso``
``resource_names``         ``tb_recurso``                         the names ``tb_perfil_recurso`` holds
=========================  =====================================  ============================================

A read names the fields it uses and the plain columns it joins on; :meth:`LiveSchema.resolve` reads
``information_schema`` once, takes for each field the first alternative whose columns all exist, and returns SQL
expressions over the reader's own table aliases. A flag is read as ``(column::text IN ('1', 't', 'true'))``: true for
a boolean true and an integer 1 alike. When a field or a column is on neither schema, :class:`SchemaUnsupported`
names what is missing before any row is read ("não verificável"), never a raw SQL error.

Only reads use this. Writes go through module_utils pec_compat, whose profiles describe 4.x only: on 5.x every
write into these tables is refused with the manual path in the PEC's UI.
"""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import table_columns


def _column(table, column):
    return ((f"{table}.{column}",), "{a}." + column)


def _flag(table, column):
    return ((f"{table}.{column}",), "({a}." + column + "::text IN ('1', 't', 'true'))")


# field -> alternatives, tried in order: (the "table.column" names it needs, its SQL over the alias {a}).
FIELDS = {
    "professional_name": (_column("tb_prof", "no_profissional"), _column("tb_prof", "no_civil_profissional")),
    "role_type": (_column("tb_ator_papel", "tp_ator_papel"), _column("tb_ator_papel", "no_tipo_ator_papel")),
    "profile_type": (_column("tb_perfil", "tp_perfil"), _column("tb_perfil", "type")),
    "profile_active": (_flag("tb_perfil", "st_ativo"), _flag("tb_perfil", "situation")),
    "lotacao_active": (_flag("tb_lotacao", "st_ativo"),),
    "municipal_admin_place": (
        _column("tb_adm_municipal", "co_ibge_municipio"),
        (("tb_adm_municipal.co_localidade",), "{a}.co_localidade::text"),
    ),
    "grant_resource": (
        _column("tb_perfil_recurso", "no_recurso"),
        (
            ("tb_perfil_recurso.co_recurso", "tb_recurso.co_recurso", "tb_recurso.no_recurso"),
            "(SELECT rc.no_recurso FROM tb_recurso rc WHERE rc.co_recurso = {a}.co_recurso)",
        ),
    ),
    # a relation of one column, no_recurso: use as FROM <it> AS alias (no_recurso)
    "resource_names": (
        (("tb_recurso.no_recurso",), "(SELECT no_recurso FROM tb_recurso)"),
        (("tb_perfil_recurso.no_recurso",), "(SELECT DISTINCT no_recurso FROM tb_perfil_recurso)"),
    ),
}


class SchemaUnsupported(PecError):
    """A read this PEC's schema does not allow (``details['missing']``: what it lacks); nothing was read."""


def _split(name):
    table, _dot, column = name.partition(".")
    return table, column


class Resolved:
    """The live form of the fields one read asked for."""

    def __init__(self, templates, sources):
        self._templates = templates
        self.sources = sources  # field -> the live "table.column" names it reads

    def expr(self, field, alias):
        """The SQL expression of ``field`` over the table alias ``alias``."""
        return self._templates[field].format(a=alias)


class LiveSchema:
    """What the live database has of the tables the reads use; information_schema is read once per table."""

    def __init__(self, client):
        self.client = client
        self._columns = {}

    def columns(self, tables):
        """{table: set of its columns} in the current schema (an absent table: an empty set)."""
        wanted = set(tables) - set(self._columns)
        if wanted:
            live = table_columns(self.client, wanted)
            for table in wanted:
                self._columns[table] = set(live.get(table, ()))
        return {t: self._columns[t] for t in tables}

    def resolve(self, what, fields=(), columns=None):
        """The fields (names of FIELDS) and plain ``columns`` ({table: [columns]}) one read needs, as a Resolved;
        raises SchemaUnsupported naming everything missing. ``what``: the read, for the message."""
        columns = columns or {}
        tables = set(columns)
        for field in fields:
            for needs, _template in FIELDS[field]:
                tables.update(_split(n)[0] for n in needs)
        live = self.columns(tables)

        def present(name):
            table, column = _split(name)
            return column in live[table]

        missing = []
        for table, names in columns.items():
            if not live[table]:
                missing.append(f"table {table}")
                continue
            missing.extend(f"column {table}.{c}" for c in names if c not in live[table])
        templates, sources = {}, {}
        for field in fields:
            for needs, template in FIELDS[field]:
                if all(present(n) for n in needs):
                    templates[field], sources[field] = template, list(needs)
                    break
            else:
                options = " or ".join(" with ".join(needs) for needs, _template in FIELDS[field])
                missing.append(f"{field}: column {options}")
        if missing:
            raise SchemaUnsupported(
                f"{what}: não verificável on this PEC, its database lacks {'; '.join(missing)} (the collection reads "
                "the PEC test double's 4.x names and those seen on a real 5.5). Nothing was read. A survey of this "
                "PEC version (docs/survey.md) shows what its schema has",
                missing=missing,
            )
        return Resolved(templates, sources)
