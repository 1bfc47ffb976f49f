# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small PDF writer for the collection's notices: the content of a simple HTML page, as an A4 PDF.

Pure Python, no dependency: the PDF's built-in fonts (Helvetica, Helvetica-Bold, Courier) with WinAnsiEncoding,
which covers Portuguese. The HTML subset read is what the notice templates use: ``h1``, ``h2``, ``p``, ``ul/li``,
``table`` rows (``th`` label and ``td`` value), ``strong``/``b`` (bold) and ``code`` (monospace); ``head``,
``style`` and ``script`` are skipped. Output is deterministic (no date, no random ID): same HTML, same bytes.
"""

from __future__ import annotations

import unicodedata
from html.parser import HTMLParser

PAGE_W, PAGE_H, MARGIN = 595, 842, 50
TEXT_W = PAGE_W - 2 * MARGIN
FONTS = {"R": "Helvetica", "B": "Helvetica-Bold", "C": "Courier"}
SIZES = {"h1": 15, "h2": 12.5, "p": 10, "li": 10, "row": 9.5}
# Adobe's Helvetica and Helvetica-Bold widths (1/1000 em) of ASCII 32..126.
_R = (
    "278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 556 556 556 556 556 556 556 556 556 556 278 278 "
    "584 584 584 556 1015 667 667 722 722 667 611 778 722 278 500 667 556 833 722 778 667 778 722 667 611 722 667 944 "
    "667 667 611 278 278 278 469 556 333 556 556 500 556 556 278 556 556 222 222 500 222 833 556 556 556 556 333 500 "
    "278 556 500 722 500 500 500 334 260 334 584"
)
_B = (
    "278 333 474 556 556 889 722 238 333 333 389 584 278 333 278 278 556 556 556 556 556 556 556 556 556 556 333 333 "
    "584 584 584 611 975 722 722 722 722 667 611 778 722 278 556 722 611 833 722 778 667 778 722 667 611 722 667 944 "
    "667 667 611 333 278 333 584 556 333 556 611 556 611 556 333 611 611 278 278 556 278 889 611 611 611 611 389 556 "
    "333 611 556 778 556 556 500 389 280 389 584"
)
WIDTHS = {
    "R": dict(zip(map(chr, range(32, 127)), map(int, _R.split()), strict=True)),
    "B": dict(zip(map(chr, range(32, 127)), map(int, _B.split()), strict=True)),
}
# Widths of the WinAnsi characters beyond ASCII that are not an accented letter (same in both weights, near enough).
EXTRA_WIDTHS = {
    "\u2014": 1000,
    "\u2013": 556,
    "\u2022": 350,
    "\u00ba": 365,
    "\u00aa": 370,
    "\u00b0": 400,
    "\u201c": 333,
    "\u201d": 333,
    "\u2018": 222,
    "\u2019": 222,
    "\u2026": 1000,
    "\u00a7": 556,
}
MONO_SCALE = 0.9  # Courier looks larger than Helvetica at the same size
REPLACE = {"→": "->", "←": "<-", "\u2212": "-", "\u00a0": " ", "🔴": ""}


def _clean(text):
    return "".join(REPLACE.get(ch, ch) for ch in text)


def char_width(ch, font):
    if font == "C":
        return 600
    table = WIDTHS[font]
    if ch in table:
        return table[ch]
    if ch in EXTRA_WIDTHS:
        return EXTRA_WIDTHS[ch]
    base = unicodedata.normalize("NFD", ch)[:1]
    return table.get(base, 556)


def font_size(font, size):
    return size * MONO_SCALE if font == "C" else size


def text_width(text, font, size):
    return sum(char_width(ch, font) for ch in text) * font_size(font, size) / 1000


# ----------------------------------------------------------------------------------------------- HTML -> blocks
class _Blocks(HTMLParser):
    """Blocks: (kind, [runs]) for h1/h2/p/li and ('row', [[runs] per cell]) for a table row; a run is (text, font)."""

    BLOCKS = ("h1", "h2", "p", "li")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks = []
        self._runs = None
        self._cells = None
        self._fonts = ["R"]
        self._skip = 0
        self._in_title = False
        self.title = ""

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        if tag in ("head", "style", "script", "title"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self._runs = []
            self._fonts.append("B" if tag in ("h1", "h2") else self._fonts[-1])
        elif tag == "tr":
            self._cells = []
        elif tag in ("th", "td") and self._cells is not None:
            self._runs = []
            self._cells.append(self._runs)
            self._fonts.append("B" if tag == "th" else "R")
        elif tag in ("strong", "b"):
            self._fonts.append("B")
        elif tag == "code":
            self._fonts.append("C")
        elif tag == "br" and self._runs is not None:
            self._runs.append(("\n", self._fonts[-1]))

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag in ("head", "style", "script", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            if self._runs is not None:
                self.blocks.append((tag, self._runs))
            self._runs = None
            self._pop()
        elif tag in ("th", "td"):
            self._runs = None
            self._pop()
        elif tag == "tr" and self._cells is not None:
            self.blocks.append(("row", self._cells))
            self._cells = None
        elif tag in ("strong", "b", "code"):
            self._pop()

    def _pop(self):
        if len(self._fonts) > 1:
            self._fonts.pop()

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._skip or self._runs is None:
            return
        self._runs.append((_clean(data), self._fonts[-1]))


def html_blocks(html):
    """(title, blocks) of ``html``."""
    parser = _Blocks()
    parser.feed(html)
    parser.close()
    return parser.title.strip(), parser.blocks


# ---------------------------------------------------------------------------------------------- layout
def _words(runs):
    """(word, font, space_before) of the runs, whitespace collapsed as a browser does."""
    out = []
    space = False
    for text, font in runs:
        for i, part in enumerate(text.replace("\n", " ").split(" ")):
            if i > 0:
                space = True
            if part:
                out.append((part, font, space and bool(out)))
                space = False
    return out


def wrap(runs, width, size):
    """Lines of (x offset, text, font) fitting ``width`` points at ``size``."""
    lines, line, x = [], [], 0.0
    for word, font, space in _words(runs):
        gap = text_width(" ", font, size) if space and line else 0.0
        w = text_width(word, font, size)
        if line and x + gap + w > width:
            lines.append(line)
            line, x, gap = [], 0.0, 0.0
        while w > width:  # a word longer than the line (a path, a checksum): cut it
            cut = len(word)
            while cut > 1 and text_width(word[:cut], font, size) > width - x:
                cut -= 1
            line.append((x, word[:cut], font))
            lines.append(line)
            line, x, word = [], 0.0, word[cut:]
            w = text_width(word, font, size)
        line.append((x + gap, word, font))
        x += gap + w
    if line:
        lines.append(line)
    return lines


def _pdf_text(text):
    data = text.encode("cp1252", errors="replace")
    return data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


class _Pages:
    def __init__(self):
        self.pages = [[]]
        self.y = PAGE_H - MARGIN

    def need(self, height):
        if self.y - height < MARGIN:
            self.pages.append([])
            self.y = PAGE_H - MARGIN

    def text(self, x, line, size):
        for dx, word, font in line:
            self.pages[-1].append(
                b"BT /F%s %.2f Tf %.2f %.2f Td (%s) Tj ET"
                % (font.encode(), font_size(font, size), x + dx, self.y, _pdf_text(word))
            )

    def rule(self, y):
        self.pages[-1].append(b"0.75 G 0.5 w %d %.2f m %d %.2f l S 0 G" % (MARGIN, y, PAGE_W - MARGIN, y))


def layout(blocks):
    """Content streams (bytes), one per page."""
    pages = _Pages()
    for kind, content in blocks:
        size = SIZES[kind]
        lead = size * 1.3
        if kind == "row":
            label_w = 150
            label = wrap(content[0], label_w - 8, size) if content else []
            value = wrap([r for cell in content[1:] for r in cell], TEXT_W - label_w, size)
            if len(label) > 1:  # a long label gets its own line, the value below it
                label = wrap(content[0], TEXT_W, size)
                value = [[]] * len(label) + value
            rows = max(len(label), len(value), 1)
            pages.need(rows * lead + 4)
            top = pages.y
            for i in range(rows):
                pages.y = top - lead * (i + 1) + 3
                if i < len(label):
                    pages.text(MARGIN, label[i], size)
                if i < len(value):
                    pages.text(MARGIN + label_w, value[i], size)
            pages.y = top - rows * lead - 2
            pages.rule(pages.y + 1)
            continue
        indent = 14 if kind == "li" else 0
        lines = wrap(content, TEXT_W - indent, size)
        before = {"h1": 4, "h2": 14, "p": 6, "li": 2}[kind]
        pages.need(before + lead * min(len(lines), 2))
        pages.y -= before
        for n, line in enumerate(lines):
            pages.need(lead)
            pages.y -= lead
            if kind == "li" and n == 0:
                pages.text(MARGIN + 3, [(0, "\u2022", "R")], size)
            pages.text(MARGIN + indent, line, size)
        if kind == "h1":
            pages.y -= 4
            pages.rule(pages.y)
            pages.y -= 6
    return [b"\n".join(p) for p in pages.pages]


def _utf16(text):
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def render(html):
    """The PDF (bytes) of ``html``, titled with its ``<title>``."""
    title, blocks = html_blocks(html)
    streams = layout(blocks)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        None,  # pages, once the page objects are numbered
    ]
    font_ids = {}
    for key, name in FONTS.items():
        objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>" % name.encode())
        font_ids[key] = len(objects)
    resources = b"<< /Font << %s >> >>" % b" ".join(b"/F%s %d 0 R" % (k.encode(), n) for k, n in font_ids.items())
    kids = []
    for stream in streams:
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources %s /Contents %d 0 R >>"
            % (PAGE_W, PAGE_H, resources, len(objects))
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    objects.append(b"<< /Title %s /Producer (sesdf.esus) >>" % _utf16(title))
    info = len(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        info,
        xref,
    )
    return bytes(out)
