"""The migration notice as PDF: the notice's HTML template rendered from a hand-made record, laid out by the
collection's PDF writer, read back with ``pdftotext`` (poppler-utils, installed by ``make test``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import jinja2
import pytest
import yaml

from ansible_collections.sesdf.esus.plugins.module_utils import notice_pdf

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "migration_notice")
PDFTOTEXT = shutil.which("pdftotext")
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
RECORD = {
    "migrated": True,
    "date": "2026-03-01T13:45:10Z",
    "version": "4.5.2",
    "steps": {
        "backup": {
            "file": "esus_migracao_20260301T134000Z.pgdump.zst",
            "size_bytes": 734003200,
            "sha256": SHA,
            "share_path": "/mnt/backup-ti/ubs-3/esus_migracao_20260301T134000Z.pgdump.zst",
            "share_verified": True,
        },
        "lotes": {"confirmed": 4, "pending": 0, "lotes": [{"id": "L-2026-02-01", "records": 120}]},
    },
    "professionals_moved": 17,
    "view_only_profile": "Visualização de prontuário",
    "break_glass_kept": True,
    "manual_steps": {"cnes_profile_reset_off": "CNES → Importar (deixar desmarcado)"},
    "switched_off": {"transmission_off": {"TRANSMISSAO_AUTOMATICA": "false"}},
}


def notice_html(record, template="aviso.html.j2"):
    # as Ansible renders a template: the template escapes (| e) what it shows
    loader = jinja2.FileSystemLoader(os.path.join(ROLE, "templates"))
    env = jinja2.Environment(loader=loader, trim_blocks=True)  # noqa: S701
    with open(os.path.join(ROLE, "vars", "main.yml"), encoding="utf-8") as handle:
        role_vars = yaml.safe_load(handle)
    return env.get_template(template).render(
        __migration_notice=record,
        __migration_notice_region="norte",
        sesdf_esus_ubs_name="UBS 3 Ceilândia Açaí",
        sesdf_esus_cnes="0030001",
        migration_notice_to="GD/DSI/CTINF/SES",
        migration_notice_from="NTINF / GPMA",
        migration_notice_sei_process="00060-00012345/2026-11",
        **role_vars,
    )


class _Text(HTMLParser):
    """The text a reader sees in the HTML's body."""

    def __init__(self):
        super().__init__()
        self.text, self._skip = "", 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("head", "style", "title")
        if tag in ("th", "td", "li", "p", "h1", "h2", "tr", "br"):
            self.text += " "  # a cell or a block starts apart from what precedes it

    def handle_endtag(self, tag):
        self._skip -= tag in ("head", "style", "title")

    def handle_data(self, data):
        if not self._skip:
            self.text += data


def pdf_text(tmp_path, data):
    path = tmp_path / "aviso.pdf"
    path.write_bytes(data)
    return subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not PDFTOTEXT, reason="pdftotext is not installed (make deps installs poppler-utils)")
def test_the_pdf_has_the_notice_figures_and_the_same_words_as_the_html(tmp_path):
    html = notice_html(RECORD)
    data = notice_pdf.render(html)
    assert data == notice_pdf.render(html), "same HTML, same bytes"
    text = pdf_text(tmp_path, data)
    flat = re.sub(r"\s+", " ", text)
    assert "UBS 3 Ceilândia Açaí" in flat and "Processo SEI 00060-00012345/2026-11" in flat
    assert re.search(r"CNES 0030001", flat) and re.search(r"Região de Saúde norte", flat)
    assert "2026-03-01 (UTC 13:45)" in flat and "Versão do e-SUS APS PEC no servidor local 4.5.2" in flat
    assert SHA in flat and "(734003200 bytes)" in flat and "esus_migracao_20260301T134000Z.pgdump.zst" in flat
    assert "Lotes confirmados no destino: 4" in flat and "(somente visualização): 17" in flat
    assert (
        "Transmissão automática desligada: gravado pela coleção no banco do PEC (TRANSMISSAO_AUTOMATICA = false)"
        in flat
    )
    assert "A fazer no PEC (esta versão não permite à coleção): impedir que a importação do CNES redefina" in flat
    pdf_words = [w for w in text.split() if w != "•"]
    parser = _Text()
    parser.feed(html)
    html_words = parser.text.replace("→", "->").split()
    assert pdf_words == html_words


@pytest.mark.skipif(not PDFTOTEXT, reason="pdftotext is not installed (make deps installs poppler-utils)")
def test_a_switch_the_run_did_not_record_is_not_claimed(tmp_path):
    record = dict(RECORD, manual_steps={}, switched_off={})
    flat = re.sub(r"\s+", " ", pdf_text(tmp_path, notice_pdf.render(notice_html(record))))
    assert "desligada: gravado" not in flat
    assert "Transmissão automática desligada: não feito por esta coleção; conferir no PEC." in flat


CPF_RE = re.compile(r"(?<![\w.])\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?!\w)")


@pytest.mark.skipif(not PDFTOTEXT, reason="pdftotext is not installed (make deps installs poppler-utils)")
def test_the_notice_names_the_emergency_account_but_no_cpf_even_from_an_older_record(tmp_path):
    # a record written by an earlier version holds the break-glass login, a CPF (plain and formatted)
    for login in ("12345678909", "123.456.789-09"):
        record = dict(RECORD, break_glass_login=login)
        texts = {
            "md": notice_html(record, "aviso.md.j2"),
            "html": notice_html(record),
            "pdf": pdf_text(tmp_path, notice_pdf.render(notice_html(record))),
        }
        for kind, text in texts.items():
            flat = re.sub(r"\s+", " ", text).replace(SHA, "")
            assert login not in flat and not CPF_RE.search(flat), f"a CPF in the {kind} notice"
            assert "exceto a conta de acesso de emergência do NTINF" in flat, kind


def test_long_words_are_cut_and_pages_break():
    html = "<h1>T</h1>" + "".join(f"<p>parágrafo {i} {'x' * 200}</p>" for i in range(80))
    data = notice_pdf.render(html)
    assert data.count(b"/Type /Page ") > 3 and data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    for line in notice_pdf.wrap([("y" * 300, "C")], 100, 10):
        assert sum(notice_pdf.text_width(w, f, 10) for _x, w, f in line) <= 100
