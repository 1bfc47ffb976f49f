"""The report's pages opened in headless Chromium (Debian's ``chromium``, installed by ``make test``): what a
manager's browser shows (DOM after parsing), that nothing is fetched from the network, and a screenshot kept in
tests/output/ as an artifact."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from report_fixtures import SETTINGS, TODAY, fleet

from ansible_collections.sesdf.esus.plugins.module_utils import report_model, report_output

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed (make deps installs it)")
OUTPUT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "output")
# Requests the browser makes on its own (component updates, time, account checks), never from the page.
BROWSER_OWN = ("clients2.google.com", "update.googleapis.com", "accounts.google.com", "redirector.gvt1.com")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def browse(page, tmp_path, *extra):
    """Open ``page`` (a file) in Chromium: (DOM after load, URLs it requested over the network)."""
    netlog = tmp_path / "netlog.json"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={netlog}", *extra]
    out = subprocess.run([*cmd, "--dump-dom", f"file://{page}"], capture_output=True, text=True, timeout=60, check=True)
    urls = set(re.findall(r'"url":"(https?://[^"]+)"', netlog.read_text(errors="replace")))
    return out.stdout, {u for u in urls if not any(f"//{h}/" in u for h in BROWSER_OWN)}


class Dom(HTMLParser):
    """The elements a test looks at: rows, cells, bars, links and every src/href."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.bars, self.links, self.urls, self.charts = {}, [], [], [], {}
        self._row = self._cell = self._chart = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "tr" and "data-host" in a:
            self._row = self.rows.setdefault(a["data-host"], {})
        elif tag == "td" and self._row is not None:
            self._cell = a["data-field"]
            self._row[self._cell] = {"class": a.get("class", ""), "text": ""}
        elif tag == "svg":
            self._chart = self.charts.setdefault(a["id"], [])
        elif tag == "rect" and "bar" in a.get("class", ""):
            self._chart.append((a["data-label"], float(a["data-value"]), float(a["height"])))
        elif tag == "a":
            self.links.append(a.get("href"))

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._row is not None and self._cell:
            self._row[self._cell]["text"] += data


def assert_bars_drawn_to_scale(bars):
    top_value, top_height = max((drawn[1], drawn[2]) for drawn in bars)
    for _label, value, height in bars:
        assert height == pytest.approx(value * top_height / (top_value or 1), abs=0.01), bars


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    model = report_model.build(fleet(), SETTINGS, TODAY)
    dest = tmp_path_factory.mktemp("relatorios")
    report_output.write_files(str(dest), report_output.render_files(model))
    return model, dest


def test_the_region_page_in_a_browser(pages, tmp_path):
    model, dest = pages
    page = dest / "relatorio-regiao_norte-2026-12-01.html"
    dom_text, requested = browse(page, tmp_path)
    dom = Dom(dom_text)
    region = next(r for r in model["regions"] if r["region"] == "regiao_norte")
    assert set(dom.rows) == {r["host"] for r in region["rows"]}, "every UBS of the region, the unreachable one too"
    for r in region["rows"]:
        red = {field for field, cell in dom.rows[r["host"]].items() if cell["class"] == "due"}
        assert red == set(r["red_fields"]), r["host"]
    assert dom.rows["ubs-backup"]["backup"]["class"] == "due"
    assert "venceu há 11 dia(s)" in dom.rows["ubs-versao"]["versao"]["text"]
    assert dom.rows["ubs-saudavel"]["UBS"]["text"] == "UBS 1 Saudável & <Cia>"
    status = {drawn[0]: drawn[1] for drawn in dom.charts["regiao_norte-situacao"]}
    assert status == {"migrada": 0, "aguardando migração": 3, "inapta": 1, "sem classificação": 0}
    backup = {drawn[0]: drawn[1] for drawn in dom.charts["regiao_norte-backup"]}
    assert backup == {"UBS 1 Saudável & <Cia>": 1, "UBS 2 Backup Atrasado": 4, "UBS 3 Versão Vencida": 1}
    team = dom.charts["regiao_norte-prod-ubs-saudavel-0"]
    assert [drawn[1] for drawn in team] == [100 + i * 10 for i in range(12)]
    for bars in dom.charts.values():
        assert_bars_drawn_to_scale(bars)
    assert not [u for u in dom.urls if re.match(r"https?:", u)] and not requested


def test_the_index_links_every_region_and_the_screenshot_is_kept(pages, tmp_path):
    dest = pages[1]
    dom = Dom(browse(dest / "index.html", tmp_path)[0])
    assert sorted(dom.links) == sorted(
        f"relatorio-{r}-2026-12-01.html" for r in ("regiao_leste", "regiao_norte", "regiao_sul", "todas")
    )
    assert all((dest / link).exists() for link in dom.links)
    os.makedirs(OUTPUT, exist_ok=True)
    shot = os.path.abspath(os.path.join(OUTPUT, "relatorio-todas.png"))
    if os.path.exists(shot):
        os.unlink(shot)
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1600,2200",
            f"--screenshot={shot}",
            f"file://{dest / 'relatorio-todas-2026-12-01.html'}",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    with open(shot, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_network_check_sees_a_page_that_fetches_something(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="http://exemplo.invalid/logo.png"></body></html>')
    dom, requested = browse(bad, tmp_path)
    assert requested == {"http://exemplo.invalid/logo.png"}
    assert Dom(dom).urls == ["http://exemplo.invalid/logo.png"]
