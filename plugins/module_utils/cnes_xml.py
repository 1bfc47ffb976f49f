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
import os
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat as pyexpat
import zipfile

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError, compare_versions, normalize_version

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
