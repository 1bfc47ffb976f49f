# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the modules that read the PEC's transmission records on the real model (module_utils lotes_records)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  records_table:
    description:
      - Table of the PEC's transmission records (one row per ficha); attested on real servers.
    type: str
    default: tb_dado_transp
  records_uuid_column:
    description:
      - Column of O(records_table) with each record's unique id (the LEDI C(uuidDadoSerializado)); attested on
        5.5, unconfirmed for 4.x. When the live schema lacks it the records are "não verificável" and the gate closed.
    type: str
    default: co_unico_dado_serializado
  node_query:
    description:
      - A single read-only C(SELECT) returning one column, the unique ids of the records the PEC delivered to a
        destination node (C(tb_lote_transp_item_nodo), C(tb_situacao_lote_transp_nodo)...). Written by IT from a
        survey of a real server of this PEC version (docs/survey.md); their columns and status values are not public.
      - Run in a C(READ ONLY) transaction, only when every table and column of O(node_query_requires) exists.
      - Empty - online delivery is "não verificável"; only records in delivered lote files count as delivered.
    type: str
    default: ""
  node_query_requires:
    description:
      - "The tables and columns O(node_query) names, C({table: [column, ...]}), probed before it runs."
    type: dict
    default: {}
"""
