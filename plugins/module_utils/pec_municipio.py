# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PEC's internal id of a município (a ``tb_localidade`` row), which the CNES import API of PEC 5.x takes
instead of the IBGE code (docs/pec-facts.md, "CNES on 5.x").

The columns of ``tb_localidade`` are not public, so the query is IT's, written from a survey of a real server
(docs/survey.md): a single SELECT returning one row and one column, the id, for the IBGE code written
``%(ibge)s``, which is replaced by the 7-digit code (check digit included) as an SQL string literal. It runs read-only
(pec_db.query_read_only), like the node query. Zero or several rows is no answer: the caller stages the file for
the manual import in the UI and says why. Standard library only.
"""

from __future__ import annotations

from ansible_collections.sesdf.esus.plugins.module_utils.ledi import ibge_with_check_digit
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.pec_db import query_read_only, single_select, sql_literal

PLACEHOLDER = "%(ibge)s"
VARIABLES = "cnes_import_pec_municipio_id ou cnes_import_municipio_query (docs/survey.md)"


def municipio_query(query, ibge):
    """The SQL to run: ``query`` with :data:`PLACEHOLDER` replaced by the quoted 7-digit IBGE code. PecError for an
    IBGE code that is not 6 or 7 digits or a query that is not a single SELECT."""
    code = ibge_with_check_digit(ibge)
    if code is None:
        raise PecError(f"the IBGE code {ibge!r} is not 6 or 7 digits; set sesdf_esus_ibge for this host")
    if single_select(query) is None:
        raise PecError(
            "cnes_import_municipio_query must be a single SELECT (or WITH ... SELECT) returning the PEC's internal "
            f"id of the município, with the IBGE code written {PLACEHOLDER}"
        )
    return single_select(query).replace(PLACEHOLDER, sql_literal(code)), code


def find_municipio_id(client, query, ibge):
    """``{"municipio_id": str or None, "rows": n, "ibge": 7-digit code, "message": why None (Portuguese)}``.

    A query error (a table or column this PEC lacks, a write refused by the read-only transaction) raises
    PecError from the client, with the database's message."""
    sql, code = municipio_query(query, ibge)
    try:
        rows = query_read_only(client, sql)
    except PecError as exc:
        raise PecError(f"cnes_import_municipio_query failed on this PEC's database: {exc.msg}") from None
    if rows and len(rows[0]) != 1:
        raise PecError(
            f"cnes_import_municipio_query returned {len(rows[0])} columns; it must return one, the PEC's internal "
            "id of the município"
        )
    value = (rows[0][0] or "").strip() if len(rows) == 1 else ""
    if len(rows) == 1 and value:
        return {"municipio_id": value, "rows": 1, "ibge": code, "message": None}
    if len(rows) == 1:
        said = "devolveu um id vazio"
    else:
        said = f"devolveu {len(rows)} linhas (esperada 1)"
    return {
        "municipio_id": None,
        "rows": len(rows),
        "ibge": code,
        "message": (
            f"o id interno do município no PEC não é conhecido: a consulta cnes_import_municipio_query {said} para "
            f"o IBGE {code}; corrija {VARIABLES}"
        ),
    }
