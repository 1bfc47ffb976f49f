# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regional report as CSV for a spreadsheet in pt-BR: UTF-8 with BOM, ``;`` separator, one line per UBS.

Rendered from :mod:`report_model`'s rows, with the same cell texts as the HTML page.
"""

from __future__ import annotations

import csv
import io

from ansible_collections.sesdf.esus.plugins.module_utils.report_html import COLUMNS
from ansible_collections.sesdf.esus.plugins.module_utils.report_model import day_text

BOM = "\ufeff"
EXTRA = (
    "Versão alvo",
    "Prazo de atualização",
    "Idade do backup (dias)",
    "Lotes pendentes",
    "Ação necessária",
    "O que fazer",
)
HEADER = ("Região", *(column[0] for column in COLUMNS), *EXTRA)


def render(rows):
    """The CSV text (str, starting with the BOM) of ``rows``; a header line even when there is no row."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow(
            [r["region"]]
            + [column[2](r) for column in COLUMNS]
            + [
                r["version"]["target"],
                day_text(r["version"]["deadline"]),
                "" if r["backup"]["age_days"] is None else r["backup"]["age_days"],
                "" if r["lotes_pending"] is None else r["lotes_pending"],
                "sim" if r["due"] else "não",
                " | ".join(p["msg"] for p in r["pendencias"]),
            ]
        )
    return BOM + out.getvalue()
