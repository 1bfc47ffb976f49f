"""CNES XML reading and the profile audit: what NCAIS's weekly file must look like, and what is refused."""

from __future__ import annotations

import io
import zipfile

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils.cnes_xml import layout_verdict, parse_cnes, read_cnes_file
from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError
from ansible_collections.sesdf.esus.plugins.module_utils.profile_audit import audit_profiles, central_audit

CNES = "0010001"


def cnes_xml(cnes=CNES, other=None, root="ImportarXMLCNES", encoding="ISO-8859-1"):
    units = f"""
      <DADOS_GERAIS_ESTABELECIMENTOS CNES="{cnes}" NM_FANTA="UBS Sintética São José" TP_UNID_ID="02">
        <EQUIPES><DADOS_EQUIPES CO_INE="0000010001" TP_EQUIPE="70" DS_EQUIPE="ESF 01" CO_AREA="001"/></EQUIPES>
      </DADOS_GERAIS_ESTABELECIMENTOS>"""
    if other:
        units += f'<DADOS_GERAIS_ESTABELECIMENTOS CNES="{other}" NM_FANTA="UBS Vizinha"/>'
    text = f"""<?xml version="1.0" encoding="{encoding}"?>
<{root}>
  <IDENTIFICACAO DATA="2024-01-01" CO_IBGE_MUN="530010" VERSAO_XSD="2.1">
    <ESTABELECIMENTOS>{units}</ESTABELECIMENTOS>
    <PROFISSIONAIS>
      <DADOS_PROFISSIONAIS NM_PROF="Profissional Sintético 001" CPF_PROF="80000000001" CO_CNS="898000000000001">
        <LOTACOES><DADOS_LOTACOES CNES="{cnes}" CO_CBO="225142" CO_INE="0000010001"/></LOTACOES>
      </DADOS_PROFISSIONAIS>
      <DADOS_PROFISSIONAIS NM_PROF="Profissional Sintético 002" CPF_PROF="80000000002" CO_CNS="898000000000002">
        <LOTACOES><DADOS_LOTACOES CNES="{cnes}" CO_CBO="422110" CO_INE=""/>
                  <DADOS_LOTACOES CNES="9999999" CO_CBO="422110" CO_INE=""/></LOTACOES>
      </DADOS_PROFISSIONAIS>
      <DADOS_PROFISSIONAIS NM_PROF="Profissional de Outra Unidade" CPF_PROF="80000000003" CO_CNS="898000000000003">
        <LOTACOES><DADOS_LOTACOES CNES="9999999" CO_CBO="223505" CO_INE=""/></LOTACOES>
      </DADOS_PROFISSIONAIS>
    </PROFISSIONAIS>
  </IDENTIFICACAO>
</{root}>
"""
    return text.encode(encoding)


def zipped(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


@pytest.mark.nt("NT-inapta-6")
def test_valid_xml_returns_the_unit_its_teams_and_its_professionals():
    data = parse_cnes(cnes_xml(), CNES, "cnes.xml")
    assert data["unit"]["cnes"] == CNES and data["unit"]["name"] == "UBS Sintética São José"
    assert data["unit"]["teams"][0]["ine"] == "0000010001"
    assert data["ibge"] == "530010" and data["xsd_version"] == "2.1"
    got = {(p["cpf"], p["cbo"], p["ine"], p["team"]) for p in data["professionals"]}
    assert got == {("80000000001", "225142", "0000010001", "ESF 01"), ("80000000002", "422110", "", "")}
    assert all(p["cns"] and p["name"] for p in data["professionals"])
    assert len(data["sha256"]) == 64


def test_zip_from_e_gestor_is_read_like_the_xml_inside(tmp_path):
    path = tmp_path / "XmlParaESUS31_530010.zip"
    path.write_bytes(zipped({"XmlParaESUS31_530010.xml": cnes_xml()}))
    data = read_cnes_file(str(path), CNES)
    assert len(data["professionals"]) == 2
    assert data["xml_sha256"] == parse_cnes(cnes_xml(), CNES)["sha256"]


@pytest.mark.parametrize(
    ("content", "cnes", "message"),
    [
        (b"", CNES, "is empty"),
        (b"   \n", CNES, "is empty"),
        (b"CNES;NOME\n0010001;UBS\n", CNES, "not well-formed XML"),
        (cnes_xml()[:200], CNES, "not well-formed XML"),
        (cnes_xml(root="OutraCoisa"), CNES, "root element is <OutraCoisa>"),
        (b"<ImportarXMLCNES/>", CNES, "no <IDENTIFICACAO>"),
        (cnes_xml(), "0020002", "CNES 0020002 is not in"),
        (cnes_xml(), "12", "not 7 digits"),
        (zipped({"leiame.txt": b"x"}), CNES, "exactly one .xml"),
        (zipped({"a.xml": cnes_xml(), "b.xml": cnes_xml()}), CNES, "exactly one .xml"),
        (b"PK\x03\x04garbage", CNES, "cannot be opened"),
        (zipped({"XmlParaESUS31_530010.xml": cnes_xml(root="Nada")}), CNES, "root element is <Nada>"),
    ],
    ids=[
        "empty",
        "blank",
        "csv",
        "truncated",
        "wrong-root",
        "no-identificacao",
        "other-unit",
        "bad-cnes",
        "zip-without-xml",
        "zip-two-xml",
        "corrupt-zip",
        "zip-wrong-root",
    ],
)
def test_invalid_cnes_files_fail_with_a_message_that_says_what_to_do(content, cnes, message):
    with pytest.raises(PecError, match=message):
        parse_cnes(content, cnes, "cnes.xml")


def test_another_units_file_names_the_units_it_holds():
    with pytest.raises(PecError) as err:
        parse_cnes(cnes_xml(cnes="0030003"), CNES)
    assert "0030003" in err.value.msg and "sesdf_esus_cnes" in err.value.msg


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><ImportarXMLCNES>&b;</ImportarXMLCNES>',  # noqa: E501
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/shadow">]><ImportarXMLCNES>&x;</ImportarXMLCNES>',
        b'<?xml version="1.0"?><!DOCTYPE ImportarXMLCNES SYSTEM "http://example.invalid/x.dtd"><ImportarXMLCNES/>',
    ],
    ids=["entity-expansion", "external-entity", "external-dtd"],
)
def test_dtds_and_entities_are_refused(payload):
    with pytest.raises(PecError, match="refusing it"):
        parse_cnes(payload, CNES)


def test_missing_file_says_where_to_look(tmp_path):
    with pytest.raises(PecError, match="not found"):
        read_cnes_file(str(tmp_path / "nope.xml"), CNES)


def lot(cpf, cnes, cbo, profiles, ator=1, active=True):
    return {
        "ator_papel": ator,
        "cpf": cpf,
        "cns": "",
        "name": f"Prof {cpf}",
        "cnes": cnes,
        "cbo": cbo,
        "active": active,
        "profiles": profiles,
    }


def ok(name):
    return {"name": name, "type": "LOTACAO", "allowed_for_cbo": True}


def bad(name):
    return {"name": name, "type": "LOTACAO", "allowed_for_cbo": False}


@pytest.mark.nt("NT-perfis-1")
def test_profile_audit_reports_each_kind_of_mismatch_and_nothing_for_correct_lotacoes():
    data = parse_cnes(cnes_xml(), CNES)
    lotacoes = [
        lot("80000000001", CNES, "225142", [ok("Médico")], 1),  # right
        lot("80000000002", "9999999", "422110", [ok("Recepcionista")], 2),  # right (the XML lists it there)
        lot("80000000001", CNES, "225142", [bad("Farmacêutico")], 3),  # wrong profile
        lot("80000000001", "0020002", "225142", [ok("Médico")], 4),  # unit not in the XML for them
        lot("80000000002", CNES, "223505", [ok("Enfermeiro")], 5),  # CBO differs
        lot("80000000099", CNES, "225142", [ok("Médico")], 6),  # not in the CNES at all
        lot("80000000001", CNES, "225142", [bad("Farmacêutico")], 7, active=False),  # inactive: ignored
        lot("80000000001", CNES, "225142", [bad("Visualização de prontuário")], 8),  # allowed extra
    ]
    found = audit_profiles(data, lotacoes, extra_allowed_profiles=["Visualização de prontuário"])
    assert sorted((m["ator_papel"], m["tipo"]) for m in found) == [
        (3, "perfil_nao_permitido_para_cbo"),
        (4, "lotacao_em_outro_cnes"),
        (5, "cbo_divergente"),
        (6, "profissional_ausente_do_cnes"),
    ]
    assert found[0]["perfil"] == "Farmacêutico"


@pytest.mark.nt("NT-apta-4")
def test_central_audit_looks_only_at_the_migrated_unit_and_lists_the_professionals_the_central_server_lacks():
    data = parse_cnes(cnes_xml(), CNES)
    lotacoes = [
        lot("80000000001", CNES, "225142", [bad("Farmacêutico")], 1),  # present, wrong profile
        lot("80000000002", CNES, "422110", [ok("Recepcionista")], 2, active=False),  # inactive: counts as missing
        lot("80000000003", "9999999", "223505", [bad("Médico")], 3),  # another unit of the central server: ignored
        lot("80000000077", "5555555", "225142", [ok("Médico")], 4),  # another unit, not in this XML: ignored
    ]
    found = central_audit(data, lotacoes, CNES)
    assert sorted((m["cpf"], m["tipo"]) for m in found) == [
        ("80000000001", "perfil_nao_permitido_para_cbo"),
        ("80000000002", "profissional_sem_lotacao_no_central"),
    ]
    complete = [lot("80000000001", CNES, "225142", [ok("Médico")], 1), lot("80000000002", CNES, "422110", [], 2)]
    assert central_audit(data, complete, CNES) == []


@pytest.mark.parametrize(
    ("layout", "pec", "last", "expected"),
    [
        ("2.1", "4.5.2", None, None),
        ("2.1", "5.5.28", "2.1", None),
        ("3.0", "4.5.5", None, "que o PEC 4.5.5 não lê (precisa do PEC 5.0"),
        ("3.1", "5.1.9", None, "que o PEC 5.1.9 não lê (precisa do PEC 5.2"),
        ("3.1", "5.2.0", None, None),
        ("2.1", "5.5.28", "3.1", "anterior ao último importado neste PEC (3.1)"),
        ("", "5.5.28", None, "não diz a versão do seu leiaute"),
        ("3.1", None, None, "versão do PEC deste servidor não foi lida"),
    ],
)
def test_a_layout_the_pec_cannot_read_or_older_than_the_last_import_is_refused_saying_what_to_ask(
    layout, pec, last, expected
):
    reason = layout_verdict(layout, pec, last)
    if expected is None:
        assert reason is None
    else:
        assert expected in reason and ("NCAIS" in reason or "PEC" in reason)
