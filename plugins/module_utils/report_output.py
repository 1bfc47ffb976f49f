# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files of the regional report and their writing: every page from one model, written only when changed.

Names carry the report's date (``relatorio-<região>-<AAAA-MM-DD>.{html,csv,json}``, ``relatorio-todas-...`` for
all regions) and ``index.html`` links the day's pages; with ``pdf``, each page also as PDF/A beside it
(``relatorio-<região>-<AAAA-MM-DD>.pdf``, laid out from the same HTML by :mod:`html_pdf`, A4 landscape), linked
from the index too. A second run the same day on the same state rewrites nothing. Each file is written atomically
(:func:`_fsutil.atomic_write`): a reader never sees half a page.
"""

from __future__ import annotations

import json
import os

from ansible_collections.sesdf.esus.plugins.module_utils import html_pdf, report_csv, report_html
from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

ALL = "todas"


def _json(document):
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_files(model, pdf=False):
    """{file name: content} of every page of ``model``: str, bytes for the PDFs (with ``pdf``)."""
    date = model["date"]
    files = {}
    pages = {}
    regions = [
        *list(model["regions"]),
        {"region": ALL, "label": "todas as regiões", "rows": model["rows"], "pendencies": len(model["pendencies"])},
    ]
    for region in regions:
        base = f"relatorio-{region['region']}-{date}"
        pages[region["region"]] = base + ".html"
        if region["region"] == ALL:
            files[base + ".html"] = report_html.all_page(model)
        else:
            files[base + ".html"] = report_html.region_page(model, region)
        files[base + ".csv"] = report_csv.render(region["rows"])
        files[base + ".json"] = _json(
            {"date": date, "region": region["region"], "label": region["label"], "rows": region["rows"]}
        )
    pdfs = {region: name[: -len(".html")] + ".pdf" for region, name in pages.items()} if pdf else {}
    files["index.html"] = report_html.index_page(model, pages, pdfs)
    for region, name in pdfs.items():
        files[name] = html_pdf.render(files[pages[region]], name)[0]
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
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
        except OSError as exc:
            raise PecError(
                f"cannot create the report directory {directory}: {exc.strerror or exc}; set report_dir to a "
                "writable directory of the control node"
            ) from exc
        for name in changed:
            atomic_write(os.path.join(directory, name), files[name], mode)
    return changed
