# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files of the regional report and their writing: every page from one model, written only when changed.

Names carry the report's date: per region ``relatorio-<região>-<AAAA-MM-DD>.{html,csv,json}``
(``relatorio-todas-...`` for all regions), with ``pdf`` its PDF/A beside it (``.pdf``, laid out from the same HTML by
:mod:`html_pdf`, A4 landscape); each UBS's page and its teams' page in the day's directory
(``detalhe-<AAAA-MM-DD>/ubs-<host>.html``, ``equipes-<host>.html``); ``index.html`` links them all. The pages are
rendered by :mod:`report_html` from the model and the history (:mod:`report_history`). A second run the same day on
the same state rewrites nothing. Each file is written atomically (:func:`_fsutil.atomic_write`): a reader never
sees half a page.
"""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.sesdf.esus.plugins.module_utils import html_pdf, report_csv, report_history, report_html
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

ALL = report_html.ALL


def _json(document):
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_files(model, pdf=False, history=None, templates=None):
    """{file name: content} of every page of ``model``: str, bytes for the PDFs (with ``pdf``: the regions' pages).
    ``history``: :func:`report_history.load`'s (today's entries only when None); ``templates``: a directory of
    templates searched before the collection's own."""
    date = model["date"]
    if history is None:
        history = report_history.load(None, model, datetime.date.fromisoformat(date))
    names = report_html.links(model, pdf)
    files = {}
    regions = [
        *list(model["regions"]),
        {"region": ALL, "label": "todas as regiões", "rows": model["rows"], "pendencies": len(model["pendencies"])},
    ]
    for region in regions:
        page = names["regions"][region["region"]]
        base = page[: -len(".html")]
        if region["region"] == ALL:
            files[page] = report_html.all_page(model, history, names, templates)
        else:
            files[page] = report_html.region_page(model, region, history, names, templates)
        files[base + ".csv"] = report_csv.render(region["rows"])
        files[base + ".json"] = _json(
            {"date": date, "region": region["region"], "label": region["label"], "rows": region["rows"]}
        )
    files["index.html"] = report_html.index_page(model, names=names, templates=templates)
    for row in model["rows"]:
        files[names["ubs"][row["host"]]] = report_html.ubs_page(model, row, history, names, templates)
        files[names["equipes"][row["host"]]] = report_html.teams_page(model, row, history, names, templates)
    for region, name in names["pdfs"].items():
        files[name] = html_pdf.render(files[names["regions"][region]], name)[0]
    return files


def write_files(directory, files, check_mode=False, mode=0o640):
    """Write the files whose content differs from what is on disk. Returns the sorted names changed (or that
    would change, in check mode). Raises PecError with what to do when the directory cannot be created or written.
    """
    if not directory or not os.path.isabs(directory):
        raise PecError(f"report_dir must be an absolute path on the control node, got {directory!r}")
    changed = []
    for name, content in sorted(files.items()):
        path = os.path.join(directory, name)
        data = content.encode("utf-8") if isinstance(content, str) else content
        try:
            with open(path, "rb") as handle:
                same = handle.read() == data
        except OSError:
            same = False
        if not same:
            changed.append(name)
    if changed and not check_mode:
        for folder in sorted({os.path.dirname(os.path.join(directory, name)) for name in changed}):
            try:
                os.makedirs(folder, mode=0o750, exist_ok=True)
            except OSError as exc:
                raise PecError(
                    f"cannot create the report directory {folder}: {exc.strerror or exc}; set report_dir to a "
                    "writable directory of the control node"
                ) from exc
        for name in changed:
            atomic_write(os.path.join(directory, name), files[name], mode)
    return changed
