# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the CNES XML that NCAIS distributes every week (``.xml`` or ``XmlParaESUS*.zip``).

Python stdlib only. The XML parser refuses DTDs, entity declarations and external entities (what
defusedxml does), and a zip is read with a size cap, so a hostile or broken file fails with a message
instead of exhausting the server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat as pyexpat
import zipfile

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, compare_versions, normalize_version
from ansible_collections.sesdf.esus.plugins.module_utils.pec_schema import LiveSchema

# The CNES XML layout (VERSAO_XSD) each PEC line reads (docs/pec-facts.md): 2.x every version; 3.0 from PEC 5.0, 3.1
# from 5.2. Every PEC refuses a layout lower than the last one it imported.
DEFAULT_LAYOUT_MIN_PEC = {"3.0": "5.0", "3.1": "5.2"}

ROOT_TAG = "ImportarXMLCNES"
MAX_XML_BYTES = 200 * 1024 * 1024
_CNES_RE = re.compile(r"^\d{7}$")


class _Forbidden(Exception):
    pass


def _forbid(what):
    def handler(*_args):
        raise _Forbidden(what)

    return handler


def safe_parse(data):
    """Parse XML bytes with expat into an ElementTree, refusing DOCTYPE, entity declarations and external refs."""
    builder = ET.TreeBuilder()
    expat = pyexpat.ParserCreate()
    expat.StartElementHandler = builder.start
    expat.EndElementHandler = builder.end
    expat.CharacterDataHandler = builder.data
    expat.StartDoctypeDeclHandler = _forbid("a DOCTYPE declaration")
    expat.EntityDeclHandler = _forbid("an entity declaration")
    expat.UnparsedEntityDeclHandler = _forbid("an unparsed entity declaration")
    expat.ExternalEntityRefHandler = _forbid("an external entity reference")
    try:
        expat.Parse(data, True)
        return builder.close()
    except _Forbidden as exc:
        raise PecError(
            f"the CNES file contains {exc}, which a CNES XML never has; refusing it (possible tampering). "
            "Ask NCAIS for a fresh copy of the file"
        ) from exc
    except (pyexpat.ExpatError, AssertionError) as exc:
        raise PecError(
            f"the CNES file is not well-formed XML ({exc}); it is probably truncated or not a CNES file. "
            "Download it again from the region's distribution point"
        ) from exc


def read_cnes_bytes(data, name="cnes.xml"):
    """The XML bytes of a CNES file: the file itself, or the single .xml inside an XmlParaESUS zip."""
    if not data or not data.strip():
        raise PecError(f"the CNES file {name} is empty; download it again from the region's distribution point")
    if data[:2] == b"PK":
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise PecError(f"{name} looks like a zip but cannot be opened ({exc}); download it again") from exc
        with archive:
            xmls = [i for i in archive.infolist() if i.filename.lower().endswith(".xml") and not i.is_dir()]
            if len(xmls) != 1:
                raise PecError(
                    f"{name} must hold exactly one .xml (it holds {len(xmls)}: "
                    f"{', '.join(i.filename for i in xmls) or 'none'}); ask NCAIS for the right XmlParaESUS file"
                )
            if xmls[0].file_size > MAX_XML_BYTES:
                raise PecError(f"{name}: {xmls[0].filename} would expand to {xmls[0].file_size} bytes; refusing it")
            try:
                inner = archive.read(xmls[0])
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise PecError(
                    f"{name}: {xmls[0].filename} is corrupt inside the zip ({exc}); download it again"
                ) from exc
        if not inner.strip():
            raise PecError(f"the XML inside {name} is empty; download it again")
        return inner
    return data


def _attrs_lower(elem):
    return {k.upper(): (v or "").strip() for k, v in elem.attrib.items()}


def parse_cnes(data, cnes, name="cnes.xml"):
    """Validate a CNES file and return the unit ``cnes`` and its professionals.

    Raises PecError for: empty, not XML, wrong root, missing sections, ``cnes`` not in the file.
    """
    if not _CNES_RE.match(str(cnes or "")):
        raise PecError(f"the UBS CNES {cnes!r} is not 7 digits; set sesdf_esus_cnes for this host")
    raw = data
    xml = read_cnes_bytes(raw, name)
    root = safe_parse(xml)
    if root.tag != ROOT_TAG:
        raise PecError(
            f"{name} is XML but not a CNES file for the e-SUS: root element is <{root.tag}>, expected <{ROOT_TAG}>. "
            "Make sure NCAIS sent the 'XML para e-SUS' export of e-Gestor"
        )
    ident = root.find("IDENTIFICACAO")
    if ident is None:
        raise PecError(f"{name}: <{ROOT_TAG}> has no <IDENTIFICACAO>; the file is incomplete, download it again")
    ests = ident.find("ESTABELECIMENTOS")
    profs = ident.find("PROFISSIONAIS")
    if ests is None or profs is None:
        raise PecError(f"{name}: <IDENTIFICACAO> lacks ESTABELECIMENTOS or PROFISSIONAIS; the file is incomplete")
    meta = _attrs_lower(ident)
    units = {}
    for est in ests.findall("DADOS_GERAIS_ESTABELECIMENTOS"):
        a = _attrs_lower(est)
        teams = [
            {
                "ine": t.get("CO_INE", ""),
                "name": t.get("DS_EQUIPE") or t.get("NM_REFERENCIA", ""),
                "type": t.get("TP_EQUIPE", ""),
                "area": t.get("CO_AREA", ""),
            }
            for t in (_attrs_lower(x) for x in est.iter("DADOS_EQUIPES"))
        ]
        units[a.get("CNES", "")] = {
            "cnes": a.get("CNES", ""),
            "name": a.get("NM_FANTA", ""),
            "type": a.get("TP_UNID_ID", ""),
            "teams": teams,
        }
    if not units:
        raise PecError(f"{name} lists no establishment (ESTABELECIMENTOS is empty); ask NCAIS for a complete file")
    if cnes not in units:
        listed = ", ".join(sorted(units)[:10]) + (" ..." if len(units) > 10 else "")
        raise PecError(
            f"CNES {cnes} is not in {name} (it lists {listed}): this is another unit's or municipality's file. "
            "Check sesdf_esus_cnes for this host and the file the region distributed"
        )
    unit = units[cnes]
    team_names = {t["ine"]: t["name"] for t in unit["teams"]}
    professionals = []
    all_professionals = []
    for prof in profs.findall("DADOS_PROFISSIONAIS"):
        a = _attrs_lower(prof)
        lots = [_attrs_lower(x) for x in prof.iter("DADOS_LOTACOES")]
        entry = {
            "cpf": a.get("CPF_PROF", ""),
            "cns": a.get("CO_CNS", ""),
            "name": a.get("NM_PROF", ""),
            "lotacoes": [
                {
                    "cnes": lot.get("CNES", ""),
                    "cbo": lot.get("CO_CBO", ""),
                    "ine": lot.get("CO_INE", ""),
                    "team": team_names.get(lot.get("CO_INE", ""), ""),
                    "microarea": lot.get("MICROAREA", ""),
                }
                for lot in lots
            ],
        }
        all_professionals.append(entry)
        here = [lot for lot in entry["lotacoes"] if lot["cnes"] == cnes]
        for lot in here:
            professionals.append(
                {
                    "cpf": entry["cpf"],
                    "cns": entry["cns"],
                    "name": entry["name"],
                    "cbo": lot["cbo"],
                    "ine": lot["ine"],
                    "team": lot["team"],
                }
            )
    return {
        "file": name,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "xml_sha256": hashlib.sha256(xml).hexdigest(),
        "ibge": meta.get("CO_IBGE_MUN", ""),
        "xsd_version": meta.get("VERSAO_XSD", ""),
        "date": meta.get("DATA", ""),
        "units": len(units),
        "unit": unit,
        "professionals": professionals,
        "all_professionals": all_professionals,
    }


def read_cnes_file(path, cnes):
    """parse_cnes on a file on disk, with clear messages for a missing or unreadable file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_XML_BYTES + 1)
    except FileNotFoundError as exc:
        raise PecError(f"CNES file {path} not found; check the region's distribution point") from exc
    except IsADirectoryError as exc:
        raise PecError(f"CNES path {path} is a directory, not a file") from exc
    except PermissionError as exc:
        raise PecError(f"cannot read CNES file {path}: permission denied; run with become: true") from exc
    if len(data) > MAX_XML_BYTES:
        raise PecError(f"CNES file {path} is larger than {MAX_XML_BYTES} bytes; refusing it")
    return parse_cnes(data, cnes, os.path.basename(path))


def cnes_from_base64(content, cnes, name="cnes"):
    """parse_cnes on base64 text (a file slurped from another host); a clear message when it is not base64."""
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PecError("the CNES content is not base64 (pass the 'content' that slurp returns)") from exc
    if len(data) > MAX_XML_BYTES:
        raise PecError(f"the CNES content is larger than {MAX_XML_BYTES} bytes; refusing it")
    return parse_cnes(data, cnes, name)


# Profile audit -------------------------------------------------------------------------------------

# The lotações and their profiles, one JSON object per lotação; {name}, {active}, {profile_type} are the live columns
# (module_utils pec_schema: the double's 4.x names or those seen on 5.5). The CPF and name are read for the
# comparison with the CNES XML, as before 5.5 support: nothing more is read on either schema.
AUDIT_SQL_TEMPLATE = """
SELECT json_build_object(
    'ator_papel', l.co_ator_papel, 'cpf', p.nu_cpf, 'cns', p.nu_cns, 'name', {name},
    'cnes', u.nu_cnes, 'cbo', b.co_cbo_2002, 'active', {active},
    'profiles', coalesce((
        SELECT json_agg(json_build_object(
            'name', pf.no_perfil, 'type', {profile_type},
            'allowed_for_cbo', EXISTS (SELECT 1 FROM rl_perfil_cbo_padrao r
                                       WHERE r.co_perfil = pf.co_seq_perfil AND r.co_cbo = l.co_cbo))
            ORDER BY pf.no_perfil)
        FROM rl_ator_papel_perfil rp JOIN tb_perfil pf ON pf.co_seq_perfil = rp.co_perfil
        WHERE rp.co_ator_papel = l.co_ator_papel), '[]'::json))::text
FROM tb_lotacao l
JOIN tb_ator_papel ap ON ap.co_seq_ator_papel = l.co_ator_papel
JOIN tb_prof p ON p.co_seq_prof = ap.co_prof
JOIN tb_unidade_saude u ON u.co_seq_unidade_saude = l.co_unidade_saude
JOIN tb_cbo b ON b.co_cbo = l.co_cbo
ORDER BY p.nu_cpf, l.co_ator_papel
"""
AUDIT_FIELDS = ("professional_name", "lotacao_active", "profile_type")
AUDIT_COLUMNS = {
    "tb_lotacao": ["co_ator_papel", "co_unidade_saude", "co_cbo"],
    "tb_ator_papel": ["co_seq_ator_papel", "co_prof"],
    "tb_prof": ["co_seq_prof", "nu_cpf", "nu_cns"],
    "tb_unidade_saude": ["co_seq_unidade_saude", "nu_cnes"],
    "tb_cbo": ["co_cbo", "co_cbo_2002"],
    "rl_ator_papel_perfil": ["co_ator_papel", "co_perfil"],
    "tb_perfil": ["co_seq_perfil", "no_perfil"],
    "rl_perfil_cbo_padrao": ["co_perfil", "co_cbo"],
}


def audit_sql(resolved):
    """AUDIT_SQL_TEMPLATE on the live schema (a pec_schema Resolved of AUDIT_FIELDS)."""
    return AUDIT_SQL_TEMPLATE.format(
        name=resolved.expr("professional_name", "p"),
        active=resolved.expr("lotacao_active", "l"),
        profile_type=resolved.expr("profile_type", "pf"),
    )


def read_lotacoes(client, schema=None):
    """The PEC's lotações as audit_profiles takes them, read on the 4.x or the 5.x schema (``active`` a boolean on
    both). Raises pec_schema.SchemaUnsupported, naming the missing column, before any row is read."""
    resolved = (schema or LiveSchema(client)).resolve("the profile audit", AUDIT_FIELDS, AUDIT_COLUMNS)
    return [json.loads(r[0]) for r in client.query(audit_sql(resolved))]


def audit_profiles(cnes_data, lotacoes, extra_allowed_profiles=(), include_inactive=False):
    """Compare the PEC's lotações (read_lotacoes) with the CNES XML (parse_cnes output).

    A lotação is right when the CNES XML places the professional (by CPF) in the same unit CNES with
    the same CBO, and each of its profiles is a default profile of that CBO (rl_perfil_cbo_padrao) or
    one of ``extra_allowed_profiles``. Returns the list of mismatches, each a dict with ``tipo``.
    """
    by_cpf = {p["cpf"]: p for p in cnes_data["all_professionals"] if p["cpf"]}
    extra = set(extra_allowed_profiles or ())
    mismatches = []
    for lot in lotacoes:
        if not lot.get("active", True) and not include_inactive:
            continue
        base = {
            "cpf": lot["cpf"],
            "nome": lot["name"],
            "cnes": lot["cnes"],
            "cbo": lot["cbo"],
            "ator_papel": lot["ator_papel"],
        }
        xml_prof = by_cpf.get(lot["cpf"])
        if xml_prof is None:
            mismatches.append(
                {**base, "tipo": "profissional_ausente_do_cnes", "detalhe": "o profissional não consta do XML do CNES"}
            )
        else:
            places = {(x["cnes"], x["cbo"]) for x in xml_prof["lotacoes"]}
            units = {x["cnes"] for x in xml_prof["lotacoes"]}
            if lot["cnes"] not in units:
                mismatches.append(
                    {
                        **base,
                        "tipo": "lotacao_em_outro_cnes",
                        "detalhe": f"lotação no CNES {lot['cnes']}; o CNES lota o profissional em "
                        + ", ".join(sorted(units)),
                    }
                )
            elif (lot["cnes"], lot["cbo"]) not in places:
                cbos = sorted(x["cbo"] for x in xml_prof["lotacoes"] if x["cnes"] == lot["cnes"])
                mismatches.append(
                    {
                        **base,
                        "tipo": "cbo_divergente",
                        "detalhe": f"CBO {lot['cbo']} no PEC; no CNES: {', '.join(cbos)}",
                    }
                )
        for prof in lot.get("profiles") or []:
            if prof["allowed_for_cbo"] or prof["name"] in extra:
                continue
            mismatches.append(
                {
                    **base,
                    "tipo": "perfil_nao_permitido_para_cbo",
                    "perfil": prof["name"],
                    "detalhe": f"perfil '{prof['name']}' não é perfil padrão do CBO {lot['cbo']}",
                }
            )
    return mismatches


def central_audit(cnes_data, lotacoes, cnes, extra_allowed_profiles=(), include_inactive=False):
    """The central server's side of a migrated UBS: its lotações of unit ``cnes`` checked as audit_profiles does,
    plus every professional the CNES XML places in that unit with no active lotação there with that CBO
    (``profissional_sem_lotacao_no_central``). The central server holds many units: the others are ignored.
    """
    here = [lot for lot in lotacoes if lot.get("cnes") == cnes]
    mismatches = audit_profiles(cnes_data, here, extra_allowed_profiles, include_inactive)
    present = {(lot["cpf"], lot["cbo"]) for lot in here if lot.get("active", True)}
    for prof in cnes_data["professionals"]:
        if (prof["cpf"], prof["cbo"]) in present:
            continue
        mismatches.append(
            {
                "cpf": prof["cpf"],
                "nome": prof["name"],
                "cnes": cnes,
                "cbo": prof["cbo"],
                "ator_papel": None,
                "tipo": "profissional_sem_lotacao_no_central",
                "detalhe": f"o CNES lota o profissional nesta unidade com o CBO {prof['cbo']}; o servidor central "
                "não tem essa lotação ativa (importar o CNES no servidor central ou cadastrar a lotação)",
            }
        )
    return mismatches


def layout_verdict(xsd_version, pec_version, last_xsd_version=None, min_pec=None):
    """None when a PEC of ``pec_version`` takes a CNES file of layout ``xsd_version`` after one of
    ``last_xsd_version``; else the reason, in Portuguese, with what to do. ``min_pec``: {layout: first PEC that
    reads it} (DEFAULT_LAYOUT_MIN_PEC)."""
    layout = normalize_version(xsd_version)
    if not layout:
        return (
            "o arquivo do CNES não diz a versão do seu leiaute (VERSAO_XSD em IDENTIFICACAO): não dá para saber se "
            "este PEC o lê; peça ao NCAIS o arquivo gerado pelo e-Gestor"
        )
    pec = normalize_version(pec_version)
    if not pec:
        return f"a versão do PEC deste servidor não foi lida: não dá para saber se ele lê o leiaute {layout} do CNES"
    rules = DEFAULT_LAYOUT_MIN_PEC if min_pec is None else min_pec
    needed = [v for k, v in rules.items() if compare_versions(layout, k) >= 0]
    required = max(needed, key=lambda v: tuple(int(p) for p in normalize_version(v).split("."))) if needed else None
    if required and compare_versions(pec, required) < 0:
        return (
            f"o arquivo usa o leiaute {layout} do CNES, que o PEC {pec} não lê (precisa do PEC {required} ou mais "
            "novo): peça ao NCAIS o arquivo no leiaute que este PEC lê (2.1) ou atualize o PEC"
        )
    last = normalize_version(last_xsd_version)
    if last and compare_versions(layout, last) < 0:
        return (
            f"o arquivo usa o leiaute {layout} do CNES, anterior ao último importado neste PEC ({last}), e o PEC "
            f"recusa leiaute mais antigo: peça ao NCAIS o arquivo no leiaute {last} ou mais novo"
        )
    return None
