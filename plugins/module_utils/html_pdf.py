# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTML to PDF on the control node, through WeasyPrint: the one way the collection makes a PDF (the migration
notice, the regional report's pages).

What comes out: PDF/A-3u (archival; every glyph mapped to Unicode, so the text copies and searches as written),
A4, every font the page uses embedded (subset), laid out with the page's own print stylesheet (its ``@media print``
and ``@page`` rules) over a base one: A4 portrait, margins, "Página n de m" at the foot, DejaVu Sans. The PDF carries
no date and its ID is derived from its content: the same HTML gives the same bytes, so a second run rewrites
nothing. Nothing is fetched while laying out: only ``data:`` URLs are read (the pages are self-contained).

Control node only (the action plugins ``html_pdf`` and ``report_write``, the execution environment): WeasyPrint,
its system libraries (Pango, HarfBuzz, fontconfig) and the DejaVu fonts are needed there, never on a UBS server
(this file is not in ``runtime_module_utils``). WeasyPrint is imported when a PDF is made; a missing piece ends in a
``PecError`` saying what to install.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

from ansible_collections.sesdf.esus.plugins.module_utils._fsutil import atomic_write, sha256_bytes
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

PDF_VARIANT = "pdf/a-3u"
# The families the pages and the base stylesheet name; a control node without them would lay out with whatever
# fontconfig finds (or crash inside Pango when it finds none), so they are required.
FONTS = ("DejaVu Sans", "DejaVu Sans Mono")
REQUIREMENT = "weasyprint>=70,<71"  # as in meta/requirements.txt
SYSTEM = (
    "Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; "
    "RHEL: dnf install pango harfbuzz dejavu-sans-fonts dejavu-sans-mono-fonts"
)
EE = "or run from the collection's execution environment, which has them; nothing was written"
BASE_CSS = """
@page {
  size: A4 portrait;
  margin: 16mm 15mm 18mm 15mm;
  @bottom-right { content: "Página " counter(page) " de " counter(pages); font: 8pt "DejaVu Sans"; color: #444; }
}
html { font-family: "DejaVu Sans", sans-serif; }
code, pre, kbd, samp { font-family: "DejaVu Sans Mono", monospace; }
"""


def _import():
    """The weasyprint module, or PecError saying what to install. WeasyPrint prints to stdout and warns when a
    library or the fonts are missing: both are kept out of Ansible's output, the message says it instead."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import weasyprint
    except ImportError as exc:
        raise PecError(
            f"the PDF needs WeasyPrint on the control node and the Python running Ansible does not have it ({exc}): "
            f"install it there ({sys.executable} -m pip install '{REQUIREMENT}', the collection's "
            f"meta/requirements.txt) with the libraries and fonts it uses ({SYSTEM}), {EE}"
        ) from exc
    except OSError as exc:  # a system library (Pango, HarfBuzz, fontconfig, GObject) cannot be loaded
        raise PecError(
            f"WeasyPrint is installed but cannot load a system library it needs ({exc}): install them on the control "
            f"node ({SYSTEM}), {EE}"
        ) from exc
    return weasyprint


def font_families():
    """The font families fontconfig offers on this control node (through WeasyPrint's own fontconfig binding), or
    None when this WeasyPrint does not expose it."""
    try:
        from weasyprint.text.ffi import ffi, fontconfig
    except ImportError:
        return None
    config = fontconfig.FcInitLoadConfigAndFonts()
    families = set()
    try:
        fonts = fontconfig.FcConfigGetFonts(config, fontconfig.FcSetSystem)
        if fonts == ffi.NULL:
            return families
        value = ffi.new("FcChar8 **")
        for i in range(fonts.nfont):
            if fontconfig.FcPatternGetString(fonts.fonts[i], b"family", 0, value) == fontconfig.FcResultMatch:
                families.add(ffi.string(value[0]).decode("utf-8", "replace"))
    finally:
        fontconfig.FcConfigDestroy(config)
    return families


def _require_fonts():
    families = font_families()
    if families is None:
        return
    missing = [f for f in FONTS if f not in families]
    if missing:
        raise PecError(
            f"the control node has no {' nor '.join(missing)} font for the PDF: install the DejaVu fonts "
            f"(Debian: apt-get install fonts-dejavu-core; RHEL: dnf install dejavu-sans-fonts "
            f"dejavu-sans-mono-fonts), {EE}"
        )


def render(html, what="the page"):
    """``(pdf bytes, number of pages)`` of the HTML document ``html`` (str). Raises PecError with what to install
    when WeasyPrint, a library or the fonts are missing, or naming ``what`` when the layout fails."""
    weasyprint = _import()
    _require_fonts()
    fetcher = weasyprint.URLFetcher(allowed_protocols=("data",))
    options = {"stylesheets": [weasyprint.CSS(string=BASE_CSS)], "pdf_variant": PDF_VARIANT}
    try:
        document = weasyprint.HTML(string=str(html), url_fetcher=fetcher).render(**options)
        data = document.write_pdf(**options)
    except Exception as exc:  # WeasyPrint's own failure on this document: say which one, never a traceback
        raise PecError(f"WeasyPrint could not lay out {what} as PDF: {type(exc).__name__}: {exc}") from exc
    return data, len(document.pages)


def write(path, html, mode=0o640, check_mode=False, what=None):
    """Render ``html`` and write it to ``path`` atomically when its bytes or mode differ (never in check mode).

    Returns ``{changed, pages, sha256}``. A failure leaves nothing under ``path`` but what was there before.
    """
    data, pages = render(html, what or os.path.basename(path))
    try:
        with open(path, "rb") as handle:
            same = handle.read() == data and (os.fstat(handle.fileno()).st_mode & 0o7777) == mode
    except OSError:
        same = False
    if not same and not check_mode:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise PecError(f"the directory of {path} does not exist: create it first (nothing was written)")
        atomic_write(path, data, mode)
    return {"changed": not same, "pages": pages, "sha256": sha256_bytes(data)}
