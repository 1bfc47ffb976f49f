"""The collection's PDFs (WeasyPrint on the control node): the migration notice and the regional report's pages,
read back as a reader and an archivist would, with poppler-utils (``pdftotext``, ``pdffonts``, ``pdfinfo``,
installed by ``make deps``); and what a control node missing WeasyPrint, a library or the fonts is told."""

from __future__ import annotations

import importlib.abc
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import jinja2
import pytest
import yaml
from report_fixtures import SETTINGS, TODAY, fleet

from ansible_collections.sesdf.esus.plugins.module_utils import html_pdf, report_model, report_output
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "migration_notice")
POPPLER = all(shutil.which(tool) for tool in ("pdftotext", "pdffonts", "pdfinfo"))
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils is not installed (make deps installs it)")
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
A4_PORTRAIT, A4_LANDSCAPE = "595.276 x 841.89 pts (A4)", "841.89 x 595.276 pts (A4)"


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


def poppler(tool, data, tmp_path, *args):
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return subprocess.run(
        [tool, *args, str(path), *(["-"] if tool == "pdftotext" else [])], capture_output=True, text=True, check=True
    ).stdout


def pdf_text(data, tmp_path):
    """The PDF's text in reading order, as a reader copies it."""
    return poppler("pdftotext", data, tmp_path)


def fonts(data, tmp_path):
    """pdffonts' rows: {name: embedded ("yes"/"no")} (columns: name, type, encoding, emb, sub, uni, object ID)."""
    lines = poppler("pdffonts", data, tmp_path).splitlines()[2:]
    return {line.split()[0]: line.split()[-5] for line in lines}


@pytest.fixture(scope="module")
def notice():
    html = notice_html(RECORD)
    data, pages = html_pdf.render(html)
    return html, data, pages


@pytest.fixture(scope="module")
def report_pdf():
    files = report_output.render_files(report_model.build(fleet(), SETTINGS, TODAY), pdf=True)
    return files["relatorio-todas-2026-12-01.pdf"]


@needs_poppler
@pytest.mark.nt("NT-apta-5")
def test_the_notice_pdf_has_the_notice_figures_accents_intact_and_the_same_words_as_the_html(notice, tmp_path):
    html, data, pages = notice
    assert data == html_pdf.render(html)[0], "same HTML, same bytes: a second run rewrites nothing"
    text = pdf_text(data, tmp_path)
    flat = re.sub(r"\s+", " ", text)
    assert "Aviso de migração para o servidor central — UBS 3 Ceilândia Açaí" in flat
    assert "Processo SEI 00060-00012345/2026-11" in flat and "CNES 0030001" in flat
    assert "Região de Saúde norte" in flat and "Data da migração 2026-03-01 (UTC 13:45)" in flat
    assert "Versão do e-SUS APS PEC no servidor local 4.5.2" in flat
    assert SHA in flat and "(734003200 bytes)" in flat and RECORD["steps"]["backup"]["share_path"] in flat
    assert "Lotes confirmados no destino: 4" in flat and "(somente visualização): 17" in flat
    assert "somente para consulta de prontuários" in flat and "exceto a conta de acesso de emergência do NTINF" in flat
    assert (
        "Transmissão automática desligada: gravado pela coleção no banco do PEC (TRANSMISSAO_AUTOMATICA = false)"
        in flat
    )
    assert "A fazer no PEC (esta versão não permite à coleção): impedir que a importação do CNES redefina" in flat
    assert f"Página 1 de {pages}" in flat
    # nothing lost, nothing added: the PDF's words are the HTML's (bullets and the page footer aside)
    pdf_words = re.sub(r"Página \d+ de \d+", " ", text).replace("•", " ").split()
    parser = _Text()
    parser.feed(html)
    assert sorted(pdf_words) == sorted(parser.text.split())


@needs_poppler
def test_a_switch_the_run_did_not_record_is_not_claimed_in_the_pdf(tmp_path):
    record = dict(RECORD, manual_steps={}, switched_off={})
    flat = re.sub(r"\s+", " ", pdf_text(html_pdf.render(notice_html(record))[0], tmp_path))
    assert "desligada: gravado" not in flat
    assert "Transmissão automática desligada: não feito por esta coleção; conferir no PEC." in flat


CPF_RE = re.compile(r"(?<![\w.])\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?!\w)")


@needs_poppler
def test_the_notice_names_the_emergency_account_but_no_cpf_even_from_an_older_record(tmp_path):
    # a record written by an earlier version holds the break-glass login, a CPF (plain and formatted)
    for login in ("12345678909", "123.456.789-09"):
        record = dict(RECORD, break_glass_login=login)
        texts = {
            "md": notice_html(record, "aviso.md.j2"),
            "html": notice_html(record),
            "pdf": pdf_text(html_pdf.render(notice_html(record))[0], tmp_path),
        }
        for kind, text in texts.items():
            flat = re.sub(r"\s+", " ", text).replace(SHA, "")
            assert login not in flat and not CPF_RE.search(flat), f"a CPF in the {kind} notice"
            assert "exceto a conta de acesso de emergência do NTINF" in flat, kind


@needs_poppler
def test_the_notice_is_an_a4_portrait_pdf_a_with_every_font_embedded(notice, tmp_path):
    _html, data, _pages = notice
    info = poppler("pdfinfo", data, tmp_path)
    assert A4_PORTRAIT in info and "Title:           Aviso de migração — UBS 3 Ceilândia Açaí" in info
    meta = poppler("pdfinfo", data, tmp_path, "-meta")
    assert 'pdfaid:part="3"' in meta and 'pdfaid:conformance="U"' in meta, meta
    used = fonts(data, tmp_path)
    assert {name.split("+")[-1] for name in used} == {"DejaVu-Sans", "DejaVu-Sans-Bold", "DejaVu-Sans-Mono"}
    assert all(embedded == "yes" for embedded in used.values()), used


@needs_poppler
def test_the_report_page_is_an_a4_landscape_pdf_a_with_every_ubs_and_every_font_embedded(report_pdf, tmp_path):
    info = poppler("pdfinfo", report_pdf, tmp_path)
    assert A4_LANDSCAPE in info and "Title:           Relatório e-SUS APS — todas as regiões" in info
    assert 'pdfaid:part="3"' in poppler("pdfinfo", report_pdf, tmp_path, "-meta")
    used = fonts(report_pdf, tmp_path)
    assert used and all(embedded == "yes" for embedded in used.values()), used
    flat = re.sub(r"\s+", " ", pdf_text(report_pdf, tmp_path))
    assert "Relatório e-SUS APS — todas as regiões" in flat and "Pendências por UBS" in flat
    for ubs in (
        "UBS 1 Saudável & <Cia>",
        "UBS 2 Backup Atrasado",
        "UBS 3 Versão Vencida",
        "UBS 4 Inacessível",
        "UBS 5 Estado Antigo",
        "UBS 6 Sem Estado",
        "UBS 7 Estado Danificado",
    ):
        assert ubs in flat, ubs
    assert "UBS 2 Backup Atrasado (CNES 0010002) • backup diário do banco ausente ou atrasado" in flat
    assert "Últimos 12 meses" in flat and "Produção das equipes por UBS (últimos 12 meses)" in flat


# ------------------------------------------------------------------------------------------ what goes wrong
class _Refuse(importlib.abc.MetaPathFinder):
    """Makes ``import weasyprint`` fail as it does on a control node without it (ImportError) or without Pango
    (OSError from cffi's dlopen, after WeasyPrint printed its own hint to stdout)."""

    def __init__(self, error):
        self.error = error

    def find_spec(self, name, path=None, target=None):
        if name == "weasyprint" or name.startswith("weasyprint."):
            if isinstance(self.error, OSError):
                print("WeasyPrint could not import some external libraries.")
            raise self.error
        return None


@pytest.fixture
def without(monkeypatch):
    def refuse(error):
        for name in [n for n in sys.modules if n == "weasyprint" or n.startswith("weasyprint.")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setattr(sys, "meta_path", [_Refuse(error), *sys.meta_path])

    return refuse


def test_a_control_node_without_weasyprint_is_told_what_to_install_and_nothing_is_written(without, tmp_path):
    without(ImportError("No module named 'weasyprint'"))
    dest = tmp_path / "aviso.pdf"
    with pytest.raises(PecError) as err:
        html_pdf.write(str(dest), "<p>Olá</p>")
    with open(os.path.join(ROLE, "..", "..", "meta", "requirements.txt"), encoding="utf-8") as handle:
        (requirement,) = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    assert "needs WeasyPrint on the control node" in err.value.msg
    assert f"{sys.executable} -m pip install '{requirement}', the collection's meta/requirements.txt" in err.value.msg
    assert (
        "apt-get install libpango-1.0-0 libpangoft2-1.0-0" in err.value.msg and "execution environment" in err.value.msg
    )
    assert os.listdir(tmp_path) == []


def test_a_control_node_without_pango_is_told_which_packages_and_sees_no_stray_output(without, tmp_path, capsys):
    without(OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file"))
    dest = tmp_path / "relatorio.pdf"
    dest.write_bytes(b"%PDF- the previous report")
    with pytest.raises(PecError) as err:
        html_pdf.write(str(dest), "<p>Olá</p>")
    assert "cannot load a system library it needs (cannot load library 'libpango-1.0-0'" in err.value.msg
    assert "libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core" in err.value.msg
    assert "dnf install pango" in err.value.msg
    assert capsys.readouterr().out == "", "WeasyPrint's own print stays out of Ansible's output"
    assert dest.read_bytes() == b"%PDF- the previous report" and os.listdir(tmp_path) == ["relatorio.pdf"]


def test_a_control_node_without_the_fonts_is_told_to_install_them_instead_of_a_crash(monkeypatch, tmp_path):
    # an empty fontconfig: WeasyPrint would lay out with no font at all (Pango then crashes the process)
    (tmp_path / "fonts").mkdir()
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        f'<?xml version="1.0"?><fontconfig><dir>{tmp_path / "fonts"}</dir><cachedir>{tmp_path / "cache"}</cachedir>'
        "</fontconfig>"
    )
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    assert html_pdf.font_families() == set()
    dest = tmp_path / "aviso.pdf"
    with pytest.raises(PecError, match=r"no DejaVu Sans nor DejaVu Sans Mono font .*apt-get install fonts-dejavu-core"):
        html_pdf.write(str(dest), "<p>Olá</p>")
    assert not dest.exists()


def test_a_destination_that_cannot_be_written_says_so_and_leaves_no_partial_file(tmp_path):
    with pytest.raises(PecError, match="the directory of .* does not exist: create it first"):
        html_pdf.write(str(tmp_path / "falta" / "aviso.pdf"), "<p>Olá</p>")
    blocker = tmp_path / "aviso.pdf"
    blocker.mkdir()  # a directory where the PDF should go: the rename over it fails after the bytes were written
    with pytest.raises(PecError, match=r"cannot write .*aviso\.pdf: .*nothing was lost"):
        html_pdf.write(str(blocker), "<p>Olá</p>")
    assert os.listdir(tmp_path) == ["aviso.pdf"] and blocker.is_dir() and not os.listdir(blocker)


def test_a_pdf_is_written_once_with_its_mode_and_check_mode_writes_nothing(tmp_path):
    dest = tmp_path / "aviso.pdf"
    html = notice_html(RECORD)
    assert html_pdf.write(str(dest), html, check_mode=True)["changed"] and not dest.exists()
    first = html_pdf.write(str(dest), html)
    assert first["changed"] and first["pages"] == 1 and oct(dest.stat().st_mode & 0o777) == "0o640"
    assert not html_pdf.write(str(dest), html)["changed"], "same HTML, same file: nothing rewritten"
    assert html_pdf.write(str(dest), html, mode=0o600)["changed"] and oct(dest.stat().st_mode & 0o777) == "0o600"
    assert os.listdir(tmp_path) == ["aviso.pdf"], "no temporary file left"


@needs_poppler
def test_nothing_outside_the_page_is_read_while_laying_out(tmp_path):
    # a page that names a file of the control node: a stylesheet that would add a word if it were read
    css = tmp_path / "fora.css"
    css.write_text('body::after { content: "VAZOU"; }')
    page = f'<html><head><link rel="stylesheet" href="file://{css}"></head><body><p>Olá</p></body></html>'
    assert "VAZOU" not in pdf_text(html_pdf.render(page)[0], tmp_path)
    inline = '<html><head><style>body::after { content: "EMBUTIDO"; }</style></head><body><p>Olá</p></body></html>'
    assert "EMBUTIDO" in pdf_text(html_pdf.render(inline)[0], tmp_path), "the page's own stylesheet applies"
