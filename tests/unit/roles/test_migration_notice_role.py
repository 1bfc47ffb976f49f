"""The migration notice's templates (Markdown and HTML) on a record of a PEC that refused the collection's writes:
the steps done by hand in the PEC are listed with who confirmed them and when, and nothing refused is claimed."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess

import jinja2
import pytest
import yaml

from ansible_collections.sesdf.esus.plugins.module_utils import html_pdf

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "migration_notice")


def step(step_id, capability, descricao, caminho, by=None, at=None):
    return {
        "id": step_id,
        "capability": capability,
        "descricao": descricao,
        "caminho": caminho,
        "status": "confirmado" if by else "pendente",
        "solicitado_em": "2026-12-01T20:00:00Z",
        "confirmado_por": by,
        "confirmado_em": at,
    }


RECORD = {
    "migrated": True,
    "date": "2026-12-03T09:31:00Z",
    "version": "4.5.2",
    "steps": {"backup": {"file": "esus.pgdump.zst", "size_bytes": 1024, "sha256": "ab" * 32}},
    "professionals_moved": None,
    "view_only_profile": "Visualização de prontuário",
    "manual_steps": {
        "NT-apta-perfis": step(
            "NT-apta-perfis",
            "change_profiles",
            "deixar cada lotação só com o perfil de visualização",
            "Administração → Perfis",
            "João da Silva",
            "2026-12-03T09:30:00Z",
        ),
        "NT-apta-transmissao": step(
            "NT-apta-transmissao",
            "transmission_off",
            "desligar a transmissão automática de lotes",
            "Transmissão de dados → Configurações → desativar o envio automático",
            "Maria Souza",
            "2026-12-02T14:05:00Z",
        ),
    },
    "switched_off": {},
}


def render(name, record, flat=True):
    loader = jinja2.FileSystemLoader(os.path.join(ROLE, "templates"))
    env = jinja2.Environment(loader=loader, trim_blocks=True)  # noqa: S701 (the HTML template escapes with | e)
    with open(os.path.join(ROLE, "vars", "main.yml"), encoding="utf-8") as handle:
        role_vars = yaml.safe_load(handle)
    text = env.get_template(name).render(
        __migration_notice=record,
        __migration_notice_region="norte",
        sesdf_esus_ubs_name="UBS 3",
        sesdf_esus_cnes="0030001",
        migration_notice_to="GD/DSI/CTINF/SES",
        migration_notice_from="NTINF / GPMA",
        migration_notice_sei_process="",
        **role_vars,
    )
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>|\*\*|`|\|", " ", text)) if flat else text


@pytest.mark.nt("NT-apta-5")
@pytest.mark.parametrize("name", ["aviso.md.j2", "aviso.html.j2"])
def test_the_notice_lists_each_manual_step_with_who_confirmed_it_and_when(name):
    flat = render(name, RECORD)
    assert "Passos feitos na tela do PEC" in flat
    assert (
        "NT-apta-transmissao : desligar a transmissão automática de lotes; na tela do PEC: Transmissão de dados → "
        "Configurações → desativar o envio automático; pedido em 2026-12-01; confirmado por Maria Souza em "
        "2026-12-02 (UTC 14:05)."
    ) in flat.replace("NT-apta-transmissao:", "NT-apta-transmissao :"), flat
    assert "NT-apta-perfis" in flat and "confirmado por João da Silva em 2026-12-03 (UTC 09:30)" in flat
    # the switch the PEC refused is said done by hand, by whom; never "gravado pela coleção"
    assert (
        "Transmissão automática desligada: feito na tela do PEC, confirmado por Maria Souza em 2026-12-02 "
        "(NT-apta-transmissao; a coleção não consegue conferir neste PEC)"
    ) in flat
    assert "gravado pela coleção" not in flat
    assert "None" not in flat and "não contados pela coleção" in flat


@pytest.mark.parametrize("name", ["aviso.md.j2", "aviso.html.j2"])
def test_a_notice_without_manual_steps_has_no_such_section(name):
    record = copy.deepcopy(RECORD)
    record.update(manual_steps={}, professionals_moved=17, switched_off={"transmission_off": {"K": "false"}})
    flat = render(name, record)
    assert "Passos feitos na tela do PEC" not in flat and "(somente visualização): 17" in flat
    assert "Transmissão automática desligada: gravado pela coleção no banco do PEC (K = false)" in flat


@pytest.mark.skipif(
    not shutil.which("pdftotext"), reason="pdftotext is not installed (make deps installs poppler-utils)"
)
def test_the_pdf_of_the_notice_carries_the_manual_steps(tmp_path):
    path = tmp_path / "aviso.pdf"
    path.write_bytes(html_pdf.render(render("aviso.html.j2", RECORD, flat=False))[0])
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", " ", text)
    assert "Passos feitos na tela do PEC" in flat
    assert "NT-apta-perfis: deixar cada lotação só com o perfil de visualização; na tela do PEC:" in flat
    assert "confirmado por João da Silva em 2026-12-03 (UTC 09:30)." in flat
