# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the CNES XML that NCAIS distributes every week (``.xml`` or ``XmlParaESUS*.zip``).

Python stdlib only. The XML parser refuses DTDs, entity declarations and external entities (what
defusedxml does), and a zip is read with a size cap, so a hostile or broken file fails with a message
instead of exhausting the server.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import xml.etree.ElementTree as ET
import zipfile

from ansible_collections.sesdf.esus.plugins.module_utils.pec_common import PecError

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
    """Parse XML bytes with expat, refusing DOCTYPE, entity declarations and external references."""
    parser = ET.XMLParser()
    expat = parser.parser
    expat.StartDoctypeDeclHandler = _forbid("a DOCTYPE declaration")
    expat.EntityDeclHandler = _forbid("an entity declaration")
    expat.UnparsedEntityDeclHandler = _forbid("an unparsed entity declaration")
    expat.ExternalEntityRefHandler = _forbid("an external entity reference")
    try:
        parser.feed(data)
        return parser.close()
    except _Forbidden as exc:
        raise PecError(
            f"the CNES file contains {exc}, which a CNES XML never has; refusing it (possible tampering). "
            "Ask NCAIS for a fresh copy of the file"
        ) from exc
    except ET.ParseError as exc:
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
                raise PecError(f"{name}: {xmls[0].filename} is corrupt inside the zip ({exc}); download it again") from exc
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
            {"ine": t.get("CO_INE", ""), "name": t.get("DS_EQUIPE") or t.get("NM_REFERENCIA", ""),
             "type": t.get("TP_EQUIPE", ""), "area": t.get("CO_AREA", "")}
            for t in (_attrs_lower(x) for x in est.iter("DADOS_EQUIPES"))
        ]
        units[a.get("CNES", "")] = {"cnes": a.get("CNES", ""), "name": a.get("NM_FANTA", ""),
                                    "type": a.get("TP_UNID_ID", ""), "teams": teams}
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
                {"cnes": lot.get("CNES", ""), "cbo": lot.get("CO_CBO", ""), "ine": lot.get("CO_INE", ""),
                 "team": team_names.get(lot.get("CO_INE", ""), ""), "microarea": lot.get("MICROAREA", "")}
                for lot in lots
            ],
        }
        all_professionals.append(entry)
        here = [lot for lot in entry["lotacoes"] if lot["cnes"] == cnes]
        for lot in here:
            professionals.append({"cpf": entry["cpf"], "cns": entry["cns"], "name": entry["name"],
                                  "cbo": lot["cbo"], "ine": lot["ine"], "team": lot["team"]})
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
