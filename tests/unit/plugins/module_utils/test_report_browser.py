"""The report's pages opened in headless Chromium (Debian's ``chromium``, installed by ``make deps``): what a
manager's browser shows (DOM after parsing), that every page fits a 1366-pixel screen with every UBS, that nothing is
fetched from the network, and screenshots kept in tests/output/ as artifacts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from chromium_cdp import FLAGS, Browser
from report_fixtures import SETTINGS, TODAY, fleet, synthetic_fleet

from ansible_collections.sesdf.esus.plugins.module_utils import report_history, report_model, report_output

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed (make deps installs it)")
OUTPUT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "output")
SCREEN = 1366
# Requests the browser makes on its own (component updates, time, account checks), never from the page.
BROWSER_OWN = ("clients2.google.com", "update.googleapis.com", "accounts.google.com", "redirector.gvt1.com")


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


# The history of earlier runs of the region: the last night of October and of November.
EARLIER = {
    "2026-10-31": {"ubs-saudavel": [0, 1, 0], "ubs-backup": [1, 2, 0], "ubs-versao": [0, 0, 3]},
    "2026-11-30": {"ubs-saudavel": [0, 0, 1], "ubs-backup": [0, 1, 0], "ubs-versao": [2, 0, 0]},
}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    model = report_model.build(fleet(), SETTINGS, TODAY)
    history_dir = tmp_path_factory.mktemp("historico")
    for day, pendencies in EARLIER.items():
        entries = {
            r["host"]: dict(report_history.entry(r), p=pendencies[r["host"]])
            for r in model["rows"]
            if r["host"] in pendencies
        }
        folder = history_dir / "regiao_norte"
        folder.mkdir(exist_ok=True)
        (folder / f"{day}.json.gz").write_bytes(report_history.encode("regiao_norte", day, entries))
    history = report_history.load(str(history_dir), model, TODAY)
    dest = tmp_path_factory.mktemp("relatorios")
    report_output.write_files(str(dest), report_output.render_files(model, history=history))
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
    assert backup == {
        "até 1 dia": 2,
        "2 a 3 dias": 0,
        "4 a 7 dias": 1,
        "8 a 30 dias": 0,
        "mais de 30 dias": 0,
        "sem registro": 1,
    }
    # the 12 months: October and November from the history's last night of each, December from this run
    pendencies = {drawn[0]: drawn[1] for drawn in dom.charts["regiao_norte-hist-pendencias"]}
    assert pendencies["10/26: crítica"] == 1 and pendencies["10/26: alta"] == 3 and pendencies["10/26: média"] == 3
    assert pendencies["11/26: crítica"] == 2 and pendencies["11/26: alta"] == 1 and pendencies["11/26: média"] == 1
    assert pendencies["12/26: crítica"] == 1 and pendencies["12/26: alta"] == 3
    assert not any(label.startswith("09/26") for label in pendencies), "no day recorded in September: no bar"
    for bars in dom.charts.values():
        assert_bars_drawn_to_scale(bars)
    assert not [u for u in dom.urls if re.match(r"https?:", u)] and not requested


def test_the_teams_page_shows_each_teams_production_per_month(pages, tmp_path):
    _model, dest = pages
    dom_text, _requested = browse(dest / "detalhe-2026-12-01" / "equipes-ubs-saudavel.html", tmp_path)
    dom = Dom(dom_text)
    assert [drawn[1] for drawn in dom.charts["ubs-saudavel-prod-0"]] == [100 + i * 10 for i in range(12)]
    assert [drawn[1] for drawn in dom.charts["ubs-saudavel-prod-1"]] == [0] * 11 + [80]
    for bars in dom.charts.values():
        assert_bars_drawn_to_scale(bars)
    assert 'data-ine="0000654321"' in dom_text and "Equipe São João" in dom_text
    assert "enviado no prazo" in dom_text, "the CDS of the month, per unit"


def test_every_page_fits_a_1366_pixel_screen_fetches_nothing_and_every_ubs_has_its_pages(pages, tmp_path):
    model, dest = pages
    html = sorted(p for p in dest.rglob("*.html"))
    assert len(html) == 1 + 4 + 2 * len(model["rows"]), "index, 3 regions and all, two pages per UBS"
    os.makedirs(OUTPUT, exist_ok=True)
    shots = {
        "index.html": "relatorio-indice.png",
        "relatorio-regiao_norte-2026-12-01.html": "relatorio-regiao_norte.png",
        "relatorio-todas-2026-12-01.html": "relatorio-todas.png",
        "detalhe-2026-12-01/ubs-ubs-versao.html": "relatorio-ubs.png",
        "detalhe-2026-12-01/equipes-ubs-saudavel.html": "relatorio-equipes.png",
    }
    with Browser(CHROMIUM, tmp_path / "profile") as browser:
        for page in html:
            name = str(page.relative_to(dest))
            shot = os.path.abspath(os.path.join(OUTPUT, shots[name])) if name in shots else None
            if shot and os.path.exists(shot):
                os.unlink(shot)
            seen = browser.open(f"file://{page}", width=SCREEN, screenshot=shot)
            assert seen["scroll_width"] <= SCREEN, f"{name} is {seen['scroll_width']} pixels wide"
            assert seen["requests"] == [f"file://{page}"], f"{name} asked for {seen['requests']}"
            if shot:
                with open(shot, "rb") as handle:
                    assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    for r in model["rows"]:
        ubs = (dest / "detalhe-2026-12-01" / f"ubs-{r['host']}.html").read_text(encoding="utf-8")
        assert f"<title>{r['ubs'].replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}" in ubs
        assert (dest / "detalhe-2026-12-01" / f"equipes-{r['host']}.html").exists()


def test_the_pages_of_a_region_of_200_ubs_fit_the_screen_with_every_ubs(tmp_path):
    model = report_model.build(synthetic_fleet(200), SETTINGS, TODAY)
    dest = tmp_path / "relatorios"
    report_output.write_files(str(dest), report_output.render_files(model))
    with Browser(CHROMIUM, tmp_path / "profile") as browser:
        for name in ("relatorio-regiao_norte-2026-12-01.html", "relatorio-todas-2026-12-01.html", "index.html"):
            seen = browser.open(f"file://{dest / name}", width=SCREEN)
            assert seen["scroll_width"] <= SCREEN, f"{name} is {seen['scroll_width']} pixels wide"
    dom = Dom(browse(dest / "relatorio-regiao_norte-2026-12-01.html", tmp_path)[0])
    assert sorted(dom.rows) == sorted(r["host"] for r in model["rows"]) and len(dom.rows) == 200


def test_the_overflow_check_sees_a_page_wider_than_the_screen(tmp_path):
    wide = tmp_path / "larga.html"
    wide.write_text('<!DOCTYPE html><html><body><svg width="1800" height="20"></svg></body></html>')
    with Browser(CHROMIUM, tmp_path / "profile") as browser:
        assert browser.open(f"file://{wide}", width=SCREEN)["scroll_width"] > SCREEN


def test_the_index_links_every_region_and_every_ubs_page(pages, tmp_path):
    model, dest = pages
    dom = Dom(browse(dest / "index.html", tmp_path)[0])
    regions = [link for link in dom.links if link.startswith("relatorio-")]
    assert sorted(regions) == sorted(
        f"relatorio-{r}-2026-12-01.html" for r in ("regiao_leste", "regiao_norte", "regiao_sul", "todas")
    )
    assert {link for link in dom.links if link.startswith("detalhe-")} == {
        f"detalhe-2026-12-01/{kind}-{r['host']}.html" for r in model["rows"] for kind in ("ubs", "equipes")
    }
    assert all((dest / link).exists() for link in dom.links)


def test_the_network_check_sees_a_page_that_fetches_something(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="http://exemplo.invalid/logo.png"></body></html>')
    dom, requested = browse(bad, tmp_path)
    assert requested == {"http://exemplo.invalid/logo.png"}
    assert Dom(dom).urls == ["http://exemplo.invalid/logo.png"]
    with Browser(CHROMIUM, tmp_path / "profile2") as browser:
        assert "http://exemplo.invalid/logo.png" in browser.open(f"file://{bad}")["requests"]
