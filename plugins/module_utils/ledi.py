# Copyright: (c) 2026, SES-DF NTINF
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A strict, bounded reader of the PEC's lote files (LEDI): what a lote holds, and whether it can be trusted.

A lote file saved from the PEC ("Transmissão de dados" → "Gerar novo lote" → "Salvar em arquivo") is a zip named
``RAS_Lote<N>_<dd-mm-yyyy>--<HH-MM>.zip`` whose entries, at the zip's root or inside one top-level directory, are
named ``<uuid>.esus`` or ``<CNES>-<uuid>.esus``. Each entry is one ``DadoTransporteThrift`` serialized with Thrift's
TBinaryProtocol. The ten field ids decoded here are those of the public LEDI layout (``dado_transporte.thrift``):

    DadoTransporteThrift: 1 uuidDadoSerializado string (required), 2 tipoDadoSerializado i64 (required),
      3 cnesDadoSerializado string (required), 4 codIbge string, 5 ineDadoSerializado string, 6 numLote i64,
      7 dadoSerializado binary (required: the ficha, itself TBinaryProtocol, only measured here),
      8 remetente DadoInstalacaoThrift (required), 9 originadora DadoInstalacaoThrift (required),
      10 versao VersaoThrift {1 major i32, 2 minor i32, 3 revision i32}
    DadoInstalacaoThrift: 1 contraChave string (required), 2 uuidInstalacao, 3 cpfOuCnpj (required),
      4 nomeOuRazaoSocial (required), 5 fone, 6 email, 7 versaoSistema, 8 nomeBancoDados (strings)

The bytes are untrusted (a file an operator downloaded, carried and dropped in an inbox), so nothing is read
leniently:

- every length is checked against the bytes actually left before anything is sliced or allocated; a short read,
  a negative length, an unknown wire type, a wrong wire type for a known field, a repeated field, a missing required
  field or bytes left after the record all refuse the entry; an unknown field id is skipped, bounded by the bytes
  left and by a nesting depth of :data:`MAX_DEPTH`; containers cannot claim more elements than the bytes left can
  hold. Decoding an entry allocates at most about its own size.
- the zip's end record and central directory are parsed here (not by :mod:`zipfile`) so that the number of entries,
  their declared sizes, the compression ratio and the layout (no overlapping entries, nothing before the zip) are
  checked before any entry is read; every entry is then read in chunks with its size capped by what it declared
  (a header that lies cannot make it read or allocate more), its CRC checked and its compressed stream required to
  end exactly where the header says. Only stored and deflated entries are read; encrypted entries, symlinks, absolute
  names, ``..``, files that are not ``.esus`` (``__MACOSX/``, ``Thumbs.db``) are refused.

The personal data a record carries about the installation that sent or typed it (``cpfOuCnpj`` may be a person's
CPF, ``nomeOuRazaoSocial`` a person's name) is checked for presence and type only: it is never returned, kept or put
in a message. Reasons are in Portuguese: operators read them.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import os
import re
import stat
import struct
import zlib

MAX_DEPTH = 16
CHUNK = 64 * 1024
MAX_NAME_BYTES = 255

# Thrift wire types (TBinaryProtocol)
T_STOP = 0
T_BOOL = 2
T_BYTE = 3
T_DOUBLE = 4
T_I16 = 6
T_I32 = 8
T_I64 = 10
T_STRING = 11  # also "binary"
T_STRUCT = 12
T_MAP = 13
T_SET = 14
T_LIST = 15
TYPE_NAMES = {
    T_BOOL: "bool",
    T_BYTE: "byte",
    T_DOUBLE: "double",
    T_I16: "i16",
    T_I32: "i32",
    T_I64: "i64",
    T_STRING: "string",
    T_STRUCT: "struct",
    T_MAP: "map",
    T_SET: "set",
    T_LIST: "list",
}
_FIXED_WIDTH = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_I16: 2, T_I32: 4, T_I64: 8}
# the fewest bytes one value of a type takes on the wire (a container cannot claim more values than fit)
_MIN_WIDTH = {**_FIXED_WIDTH, T_STRING: 4, T_STRUCT: 1, T_MAP: 6, T_SET: 5, T_LIST: 5}

# field id -> (label in messages, wire type, required)
TRANSPORTE_FIELDS = {
    1: ("UUID", T_STRING, True),
    2: ("tipo", T_I64, True),
    3: ("CNES", T_STRING, True),
    4: ("IBGE", T_STRING, False),
    5: ("INE", T_STRING, False),
    6: ("número do lote", T_I64, False),
    7: ("ficha", T_STRING, True),
    8: ("remetente", T_STRUCT, True),
    9: ("originadora", T_STRUCT, True),
    10: ("versão", T_STRUCT, False),
}
INSTALACAO_FIELDS = {
    1: ("contra-chave", T_STRING, True),
    2: ("UUID da instalação", T_STRING, False),
    3: ("CPF ou CNPJ", T_STRING, True),
    4: ("nome ou razão social", T_STRING, True),
    5: ("telefone", T_STRING, False),
    6: ("e-mail", T_STRING, False),
    7: ("versão do sistema", T_STRING, False),
    8: ("nome do banco de dados", T_STRING, False),
}
VERSAO_FIELDS = {
    1: ("major", T_I32, True),
    2: ("minor", T_I32, True),
    3: ("revision", T_I32, True),
}

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DIGITS7 = re.compile(r"[0-9]{7}")
_DIGITS10 = re.compile(r"[0-9]{10}")
# an entry of a lote: <uuid>.esus or <CNES>-<uuid>.esus, at the root or in one top-level directory
_ENTRY_NAME = re.compile(
    r"(?:(?P<dir>[^/]+)/)?(?:(?P<cnes>[0-9]{7})-)?"
    r"(?P<uuid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\.esus"
)
# RAS_Lote<N>_<dd-mm-yyyy>--<HH-MM>, as the PEC names the file it saves (.zip) or as it unzips (a directory);
# a browser saving the same name twice adds " (1)" or "(1)"
LOTE_FILE_NAME = re.compile(
    r"RAS_Lote(?P<number>[0-9]{1,18})_(?P<day>[0-9]{2})-(?P<month>[0-9]{2})-(?P<year>[0-9]{4})"
    r"--(?P<hour>[0-9]{2})-(?P<minute>[0-9]{2})(?: ?\([0-9]{1,4}\))?(?:\.zip)?"
)


class LediError(ValueError):
    """A lote file or entry that cannot be trusted. ``reason`` is for the operator (Portuguese); ``offset`` is the
    byte of the entry where decoding stopped (or None); ``entry`` the entry's name in the lote (or None)."""

    def __init__(self, reason, offset=None, entry=None):
        self.reason = reason
        self.offset = offset
        self.entry = entry
        super().__init__(reason)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds on one lote file. An entry is one record (a few KiB); the defaults leave a wide margin."""

    max_entries: int = 200_000
    max_entry_bytes: int = 16 * 1024 * 1024
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    max_ratio: int = 200


# Thrift (TBinaryProtocol) ------------------------------------------------------------------------------------


def _field_label(fields, fid):
    return f"campo {fid} ({fields[fid][0]})" if fid in fields else f"campo {fid}"


class _Reader:
    """Bytes of one entry, read forward with every length checked against what is left."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data):
        self.data = memoryview(data)
        self.pos = 0
        self.end = len(self.data)

    def need(self, n, what):
        if n < 0:
            raise LediError(f"comprimento negativo ({n}) em {what} no byte {self.pos}", self.pos)
        if n > self.end - self.pos:
            raise LediError(
                f"entrada truncada no byte {self.end}: {what} pede {n} bytes a partir do byte {self.pos}, "
                f"restam {self.end - self.pos}",
                self.pos,
            )

    def take(self, n, what):
        self.need(n, what)
        start = self.pos
        self.pos += n
        return self.data[start : self.pos]

    def skip(self, n, what):
        self.need(n, what)
        self.pos += n

    def byte(self, what):
        return self.take(1, what)[0]

    def i16(self, what):
        return int.from_bytes(self.take(2, what), "big", signed=True)

    def i32(self, what):
        return int.from_bytes(self.take(4, what), "big", signed=True)

    def i64(self, what):
        return int.from_bytes(self.take(8, what), "big", signed=True)

    def length(self, what):
        """A string's or container's length (i32), already known to fit in the bytes left."""
        at = self.pos
        n = self.i32(f"o comprimento de {what}")
        if n < 0:
            raise LediError(f"comprimento negativo ({n}) em {what} no byte {at}", at)
        if n > self.end - self.pos:
            raise LediError(
                f"entrada truncada no byte {self.end}: {what} declara {n} bytes no byte {at}, "
                f"restam {self.end - self.pos}",
                at,
            )
        return n

    def text(self, what):
        at = self.pos
        raw = self.take(self.length(what), what)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise LediError(f"{what} não é texto UTF-8 válido (byte {at})", at) from None

    def check_text(self, what):
        """A string field that is validated but never kept (personal data)."""
        self.text(what)


def _skip_value(reader, ttype, depth, what):
    """Skip one value of wire type ``ttype`` (an unknown field), bounded by the bytes left and ``MAX_DEPTH``."""
    if ttype in _FIXED_WIDTH:
        reader.skip(_FIXED_WIDTH[ttype], what)
    elif ttype == T_STRING:
        reader.skip(reader.length(what), what)
    elif ttype == T_STRUCT:
        _check_depth(reader, depth + 1)
        while True:
            at = reader.pos
            ftype = reader.byte(f"o tipo de um campo de {what}")
            if ftype == T_STOP:
                return
            fid = reader.i16(f"o número de um campo de {what}")
            _check_type(ftype, at, f"campo {fid} de {what}")
            _skip_value(reader, ftype, depth + 1, f"campo {fid} de {what}")
    elif ttype in (T_LIST, T_SET):
        _check_depth(reader, depth + 1)
        at = reader.pos
        etype = reader.byte(f"o tipo dos elementos de {what}")
        _check_type(etype, at, f"elemento de {what}")
        size = _container_size(reader, (etype,), what)
        _skip_many(reader, etype, size, depth + 1, f"elemento de {what}")
    elif ttype == T_MAP:
        _check_depth(reader, depth + 1)
        at = reader.pos
        ktype = reader.byte(f"o tipo das chaves de {what}")
        _check_type(ktype, at, f"chave de {what}")
        vtype = reader.byte(f"o tipo dos valores de {what}")
        _check_type(vtype, at + 1, f"valor de {what}")
        size = _container_size(reader, (ktype, vtype), what)
        if ktype in _FIXED_WIDTH and vtype in _FIXED_WIDTH:
            reader.skip(size * (_FIXED_WIDTH[ktype] + _FIXED_WIDTH[vtype]), what)
        else:
            for _unused in range(size):
                _skip_value(reader, ktype, depth + 1, f"chave de {what}")
                _skip_value(reader, vtype, depth + 1, f"valor de {what}")
    else:  # pragma: no cover - _check_type refuses every other type before this is called
        raise LediError(f"tipo de dado {ttype} desconhecido em {what}", reader.pos)


def _skip_many(reader, etype, size, depth, what):
    if etype in _FIXED_WIDTH:
        reader.skip(size * _FIXED_WIDTH[etype], what)
        return
    for _unused in range(size):
        _skip_value(reader, etype, depth, what)


def _container_size(reader, types, what):
    at = reader.pos
    size = reader.i32(f"o tamanho de {what}")
    if size < 0:
        raise LediError(f"tamanho negativo ({size}) em {what} no byte {at}", at)
    per = sum(_MIN_WIDTH[t] for t in types)
    left = reader.end - reader.pos
    if size * per > left:
        raise LediError(
            f"entrada truncada no byte {reader.end}: {what} declara {size} elementos no byte {at}, "
            f"que não cabem nos {left} bytes restantes",
            at,
        )
    return size


def _check_type(ttype, at, what):
    if ttype not in TYPE_NAMES:
        raise LediError(f"tipo de dado {ttype} desconhecido em {what} (byte {at})", at)


def _check_depth(reader, depth):
    if depth > MAX_DEPTH:
        raise LediError(f"estruturas aninhadas além de {MAX_DEPTH} níveis no byte {reader.pos}", reader.pos)


def _read_struct(reader, fields, depth, where, on_field):
    """Read a known struct: fields until STOP; ``on_field(fid, label)`` reads each known field's value (its wire
    type already checked); unknown ids are skipped. Returns the set of field ids seen; required ones enforced."""
    _check_depth(reader, depth)
    prefix = f"{where}: " if where else ""
    seen = set()
    while True:
        at = reader.pos
        ftype = reader.byte(f"{prefix}o tipo do próximo campo")
        if ftype == T_STOP:
            break
        fid = reader.i16(f"{prefix}o número do campo")
        label = _field_label(fields, fid)
        _check_type(ftype, at, f"{prefix}{label}")
        if fid in seen:
            raise LediError(f"{prefix}{label} repetido (byte {at})", at)
        seen.add(fid)
        if fid in fields:
            expected = fields[fid][1]
            if ftype != expected:
                raise LediError(
                    f"{prefix}{label} com tipo {TYPE_NAMES[ftype]} (esperado {TYPE_NAMES[expected]}) no byte {at}",
                    at,
                )
            on_field(fid, f"{prefix}{label}")
        else:
            _skip_value(reader, ftype, depth, f"{prefix}{label}")
    for fid, (name, _ttype, required) in fields.items():
        if required and fid not in seen:
            raise LediError(f"{prefix}campo {fid} ({name}) ausente", reader.pos)
    return seen


def _read_instalacao(reader, depth, where):
    def on_field(_fid, label):
        reader.check_text(label)

    _read_struct(reader, INSTALACAO_FIELDS, depth, where, on_field)


def _read_versao(reader, depth, where):
    values = {}

    def on_field(fid, label):
        values[fid] = reader.i32(label)

    _read_struct(reader, VERSAO_FIELDS, depth, where, on_field)
    return f"{values[1]}.{values[2]}.{values[3]}"


def decode_dado_transporte(data):
    """One ``.esus`` entry (a DadoTransporteThrift, TBinaryProtocol) as
    ``{uuid, tipo, cnes, ibge, ine, num_lote, versao, ficha_bytes}``, or LediError.

    ``uuid`` is lower-cased; ``ibge``, ``ine``, ``num_lote``, ``versao`` are None when absent; ``ficha_bytes`` is
    the size of the serialized ficha (not decoded). The sender's and originator's CPF/CNPJ and name are checked and
    dropped. Whether the values are well-formed is :func:`check_record`'s job."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("decode_dado_transporte wants bytes")
    reader = _Reader(data)
    if reader.end == 0:
        raise LediError("entrada vazia (0 bytes)", 0)
    record = {
        "uuid": None,
        "tipo": None,
        "cnes": None,
        "ibge": None,
        "ine": None,
        "num_lote": None,
        "versao": None,
        "ficha_bytes": None,
    }

    def on_field(fid, label):
        if fid == 1:
            value = reader.text(label)
            record["uuid"] = value.lower() if value.isascii() else value
        elif fid == 2:
            record["tipo"] = reader.i64(label)
        elif fid == 3:
            record["cnes"] = reader.text(label)
        elif fid == 4:
            record["ibge"] = reader.text(label)
        elif fid == 5:
            record["ine"] = reader.text(label)
        elif fid == 6:
            record["num_lote"] = reader.i64(label)
        elif fid == 7:
            size = reader.length(label)
            reader.skip(size, label)
            record["ficha_bytes"] = size
        elif fid in (8, 9):
            _read_instalacao(reader, 2, label)
        elif fid == 10:
            record["versao"] = _read_versao(reader, 2, label)

    _read_struct(reader, TRANSPORTE_FIELDS, 1, "", on_field)
    if reader.pos != reader.end:
        raise LediError(
            f"bytes sobrando após o fim do registro: {reader.end - reader.pos} a partir do byte {reader.pos}",
            reader.pos,
        )
    return record


# Record checks ----------------------------------------------------------------------------------------------


def _want_cnes(cnes):
    if cnes is None:
        return None
    if not isinstance(cnes, str) or not _DIGITS7.fullmatch(cnes):
        raise ValueError("cnes must be a string of 7 digits")
    return cnes


def _shape(value, what):
    """How a malformed value looks, without echoing it (it could be anything, even personal data)."""
    if not isinstance(value, str):
        return f"{what} de tipo inesperado"
    return f"{what} com {len(value)} caracteres"


def ibge_with_check_digit(code):
    """The 7-digit IBGE code of a município, the form LEDI records carry: a 7-digit code as given, a 6-digit one with
    its check digit added (digits weighted 1, 2, 1, 2, 1, 2, the digits of each product summed, the digit is
    ``(10 - sum % 10) % 10``: 530010 -> 5300108). None for anything else."""
    code = str(code if code is not None else "").strip()
    if _DIGITS7.fullmatch(code):
        return code
    if not re.fullmatch(r"[0-9]{6}", code):
        return None
    total = sum(sum(divmod(int(digit) * (1 + i % 2), 10)) for i, digit in enumerate(code))
    return code + str((10 - total % 10) % 10)


def check_record(rec, cnes=None):
    """Problems (Portuguese) of a decoded record: [] when it is well-formed (and of unit ``cnes`` when given)."""
    cnes = _want_cnes(cnes)
    problems = []
    uuid = rec.get("uuid")
    if not isinstance(uuid, str) or not _UUID.fullmatch(uuid.lower() if uuid.isascii() else uuid):
        problems.append(f"{_shape(uuid, 'UUID')}: esperado um UUID (36 caracteres hexadecimais com hífens)")
    value = rec.get("cnes")
    if not isinstance(value, str) or not _DIGITS7.fullmatch(value):
        problems.append(f"{_shape(value, 'CNES')}: esperados 7 dígitos")
    elif cnes is not None and value != cnes:
        problems.append(f"CNES {value} de outra unidade (esperado {cnes})")
    value = rec.get("ine")
    if value is not None and (not isinstance(value, str) or not _DIGITS10.fullmatch(value)):
        problems.append(f"{_shape(value, 'INE')}: esperados 10 dígitos")
    value = rec.get("ibge")
    if value is not None and (not isinstance(value, str) or not _DIGITS7.fullmatch(value)):
        if isinstance(value, str) and re.fullmatch(r"[0-9]{6}", value):
            problems.append(f"código IBGE {value} com 6 dígitos: o LEDI pede os 7 dígitos, com o dígito verificador")
        else:
            problems.append(f"{_shape(value, 'código IBGE')}: esperados 7 dígitos")
    tipo = rec.get("tipo")
    if not isinstance(tipo, int) or isinstance(tipo, bool) or tipo <= 0:
        problems.append(f"tipo de ficha {tipo} inválido (deve ser um número positivo)")
    if rec.get("ficha_bytes") == 0:
        problems.append("ficha vazia (0 bytes)")
    return problems


# Lote file names ---------------------------------------------------------------------------------------------


def parse_lote_name(name):
    """``{"number": N, "exported_at": "YYYY-MM-DDTHH:MM"}`` of a ``RAS_Lote<N>_<dd-mm-yyyy>--<HH-MM>[.zip]`` name
    (a path is fine), or None when the name is not one (or its date is not a real date)."""
    if not isinstance(name, str):
        return None
    match = LOTE_FILE_NAME.fullmatch(os.path.basename(name.rstrip("/")))
    if not match:
        return None
    try:
        when = datetime.datetime(
            int(match["year"]), int(match["month"]), int(match["day"]), int(match["hour"]), int(match["minute"])
        )
    except ValueError:
        return None
    return {"number": int(match["number"]), "exported_at": when.strftime("%Y-%m-%dT%H:%M")}


# Lote contents (shared by the zip and the directory reader) ------------------------------------------------


def _show(name):
    """An entry's name as it can be printed (escaped when it is not plain printable ASCII)."""
    return name if name.isascii() and name.isprintable() else ascii(name)


def _check_safe_name(name):
    """No absolute path, drive letter, backslash, NUL, empty, '.' or '..' component."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise LediError(
            f"nome de entrada não permitido (absoluto ou com barra invertida): {_show(name)}", entry=_show(name)
        )
    if any(part in ("", ".", "..") for part in name.rstrip("/").split("/")):
        raise LediError(f"nome de entrada não permitido (com '..', '.' ou '//'): {_show(name)}", entry=_show(name))


def _check_member_name(name):
    """(top directory or None, CNES prefix or None, lower-case uuid) of a file entry's name, or LediError."""
    _check_safe_name(name)
    match = _ENTRY_NAME.fullmatch(name)
    if match:
        return match["dir"], match["cnes"], match["uuid"].lower()
    shown = _show(name)
    if name.endswith(".esus") and name.count("/") > 1:
        raise LediError(f"entrada .esus fora da pasta do lote (mais de um nível de pastas): {shown}", entry=shown)
    if name.endswith(".esus"):
        raise LediError(
            f"entrada .esus com nome fora do padrão <uuid>.esus ou <CNES>-<uuid>.esus: {shown}", entry=shown
        )
    raise LediError(f"entrada que não é .esus no lote: {shown}", entry=shown)


def _check_dir_name(name):
    """A directory entry (``name/``): only one level (the lote's own directory) is allowed."""
    _check_safe_name(name)
    if name.count("/") != 1:
        raise LediError(f"pasta inesperada no lote: {_show(name)}", entry=_show(name))


def _check_layout(files, dirs):
    """Entries at the root or all inside one top-level directory; directories only that one."""
    if not files:
        raise LediError("lote sem nenhuma entrada .esus (vazio)")
    tops = {top for top, _cnes, _uuid, _name in files}
    if len(tops) > 1:
        shown = ", ".join(sorted(f"{_show(t)}/" if t else "(raiz)" for t in tops)[:3])
        raise LediError(f"entradas .esus em mais de um lugar do lote ({shown}): esperada uma única pasta ou a raiz")
    top = next(iter(tops))
    for name in dirs:
        if top is None or name.rstrip("/") != top:
            raise LediError(f"pasta inesperada no lote: {_show(name)}", entry=_show(name))


class _Collector:
    """Checks each decoded record against its entry's name and the others, and sums up the lote."""

    def __init__(self, cnes):
        self.cnes = cnes
        self.by_uuid = {}
        self.by_type = {}
        self.cnes_seen, self.ibge, self.ines, self.versions, self.lotes = set(), set(), set(), set(), set()

    def add(self, name, name_cnes, name_uuid, data):
        try:
            rec = decode_dado_transporte(data)
        except LediError as exc:
            raise LediError(f"{name}: {exc.reason}", exc.offset, entry=name) from None
        problems = check_record(rec, self.cnes)
        if problems:
            raise LediError(f"{name}: {'; '.join(problems)}", entry=name)
        if rec["uuid"] != name_uuid:
            raise LediError(f"{name}: o UUID do registro ({rec['uuid']}) difere do nome da entrada", entry=name)
        if name_cnes is not None and name_cnes != rec["cnes"]:
            raise LediError(
                f"{name}: o CNES do nome da entrada ({name_cnes}) difere do CNES do registro ({rec['cnes']})",
                entry=name,
            )
        if rec["uuid"] in self.by_uuid:
            raise LediError(
                f"{name}: UUID {rec['uuid']} repetido no lote (também em {self.by_uuid[rec['uuid']]})", entry=name
            )
        self.by_uuid[rec["uuid"]] = name
        self.by_type[rec["tipo"]] = self.by_type.get(rec["tipo"], 0) + 1
        self.cnes_seen.add(rec["cnes"])
        for bucket, value in (
            (self.ibge, rec["ibge"]),
            (self.ines, rec["ine"]),
            (self.versions, rec["versao"]),
            (self.lotes, rec["num_lote"]),
        ):
            if value is not None:
                bucket.add(value)

    def result(self):
        return {
            "entries": len(self.by_uuid),
            "records_by_type": dict(sorted(self.by_type.items())),
            "uuids": sorted(self.by_uuid),
            "cnes": sorted(self.cnes_seen),
            "ibge": sorted(self.ibge),
            "ines": sorted(self.ines),
            "versions": sorted(self.versions, key=_version_key),
            "lote_numbers": sorted(self.lotes),
        }


def _version_key(version):
    return tuple(int(part) for part in version.split("."))


def _check_limits(limits):
    if not isinstance(limits, Limits):
        raise TypeError("limits must be a Limits")
    return limits


# Zip -------------------------------------------------------------------------------------------------------------

_EOCD = struct.Struct("<4sHHHHLLH")  # signature, disk, cd disk, entries here, entries, cd size, cd offset, comment
_EOCD64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk of the zip64 record, its offset, disks
_EOCD64 = struct.Struct("<4sQHHLLQQQQ")  # signature, size, versions, disk, cd disk, entries here, entries, size, offset
_CD_ENTRY = struct.Struct("<4sHHHHHHLLLHHHHHLL")  # central directory header (46 bytes)
_LOCAL = struct.Struct("<4sHHHHHLLLHH")  # local file header (30 bytes)
_SIG_EOCD, _SIG_EOCD64_LOCATOR, _SIG_EOCD64 = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_SIG_CD, _SIG_LOCAL = b"PK\x01\x02", b"PK\x03\x04"
_STORED, _DEFLATED = 0, 8


@dataclasses.dataclass
class _ZipEntry:
    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    external_attr: int
    offset: int
    data_start: int = 0


def _pread(fp, offset, n, what):
    fp.seek(offset)
    data = fp.read(n)
    if len(data) != n:
        raise LediError(f"zip truncado: {what} não cabe no arquivo")
    return data


def _end_of_zip(fp, size):
    """(central directory offset, its size, entries declared) from the end records; the zip must end right there."""
    if size < _EOCD.size:
        raise LediError("não é um zip (arquivo curto demais ou truncado)")
    tail_len = min(size, _EOCD.size + 0xFFFF)
    tail = _pread(fp, size - tail_len, tail_len, "o fim do zip")
    pos = tail_len - _EOCD.size
    if not (tail[pos : pos + 4] == _SIG_EOCD and tail[-2:] == b"\x00\x00"):
        pos = tail.rfind(_SIG_EOCD)
        if pos < 0 or pos + _EOCD.size > tail_len:
            raise LediError("não é um zip válido (registro final ausente: arquivo truncado ou não é zip)")
    _sig, disk, cd_disk, here, total, cd_size, cd_offset, comment = _EOCD.unpack_from(tail, pos)
    eocd_at = size - tail_len + pos
    if eocd_at + _EOCD.size + comment != size:
        raise LediError("zip truncado ou com bytes depois do registro final")
    if disk or cd_disk or here != total:
        raise LediError("zip dividido em vários volumes: não suportado")
    cd_end = eocd_at
    if eocd_at >= _EOCD64_LOCATOR.size:
        locator = _pread(fp, eocd_at - _EOCD64_LOCATOR.size, _EOCD64_LOCATOR.size, "o localizador zip64")
        sig, z64_disk, z64_at, disks = _EOCD64_LOCATOR.unpack(locator)
        if sig == _SIG_EOCD64_LOCATOR:
            if z64_disk or disks > 1:
                raise LediError("zip dividido em vários volumes: não suportado")
            if z64_at + _EOCD64.size > eocd_at - _EOCD64_LOCATOR.size:
                raise LediError("zip com registro final zip64 fora do lugar")
            record = _pread(fp, z64_at, _EOCD64.size, "o registro final zip64")
            sig, rec_size, _v1, _v2, disk, cd_disk, here, total, cd_size, cd_offset = _EOCD64.unpack(record)
            if sig != _SIG_EOCD64 or z64_at + 12 + rec_size != eocd_at - _EOCD64_LOCATOR.size:
                raise LediError("zip com registro final zip64 inválido")
            if disk or cd_disk or here != total:
                raise LediError("zip dividido em vários volumes: não suportado")
            cd_end = z64_at
    if cd_offset + cd_size != cd_end:
        raise LediError("zip com diretório central fora do lugar (truncado, ou com dados antes do zip)")
    return cd_offset, cd_size, total


def _zip64_extra(extra, entry, disk):
    """Apply a zip64 extra field (id 1) to the fields the 32-bit header marks as 0xFFFFFFFF."""
    pos = 0
    while pos < len(extra):
        if pos + 4 > len(extra):
            raise LediError(f"campo extra malformado na entrada {entry.name}", entry=entry.name)
        kind, length = struct.unpack_from("<HH", extra, pos)
        pos += 4
        if pos + length > len(extra):
            raise LediError(f"campo extra malformado na entrada {entry.name}", entry=entry.name)
        if kind == 1:
            body, at = extra[pos : pos + length], 0
            for attr in ("size", "compressed", "offset"):
                if getattr(entry, attr) == 0xFFFFFFFF:
                    if at + 8 > len(body):
                        raise LediError(f"campo zip64 malformado na entrada {entry.name}", entry=entry.name)
                    setattr(entry, attr, struct.unpack_from("<Q", body, at)[0])
                    at += 8
            if disk == 0xFFFF:
                if at + 4 > len(body):
                    raise LediError(f"campo zip64 malformado na entrada {entry.name}", entry=entry.name)
                disk = struct.unpack_from("<L", body, at)[0]
        pos += length
    return disk


def _central_directory(fp, cd_offset, cd_size, declared, limits):
    """The entries of the central directory, counted as they are read (never more than ``max_entries``)."""
    if declared > limits.max_entries:
        raise LediError(f"zip com {declared} entradas (máximo {limits.max_entries})")
    entries = []
    pos, end = cd_offset, cd_offset + cd_size
    while pos < end:
        if len(entries) >= limits.max_entries:
            raise LediError(f"zip com mais de {limits.max_entries} entradas")
        if pos + _CD_ENTRY.size > end:
            raise LediError("zip com diretório central truncado")
        (
            sig,
            _made,
            _needed,
            flags,
            method,
            _time,
            _date,
            crc,
            compressed,
            size,
            name_len,
            extra_len,
            comment_len,
            disk,
            _internal,
            external,
            offset,
        ) = _CD_ENTRY.unpack(_pread(fp, pos, _CD_ENTRY.size, "o diretório central"))
        if sig != _SIG_CD:
            raise LediError("zip com diretório central corrompido")
        if name_len > MAX_NAME_BYTES:
            raise LediError(f"zip com um nome de entrada de {name_len} bytes (máximo {MAX_NAME_BYTES})")
        record_end = pos + _CD_ENTRY.size + name_len + extra_len + comment_len
        if record_end > end:
            raise LediError("zip com diretório central truncado")
        raw_name = _pread(fp, pos + _CD_ENTRY.size, name_len, "o diretório central")
        extra = _pread(fp, pos + _CD_ENTRY.size + name_len, extra_len, "o diretório central")
        try:
            name = raw_name.decode("ascii")
        except UnicodeDecodeError:
            raise LediError(
                f"nome de entrada com caracteres fora do padrão: {raw_name.decode('ascii', 'replace')!r}"
            ) from None
        entry = _ZipEntry(name, raw_name, flags, method, crc, compressed, size, external, offset)
        if _zip64_extra(extra, entry, disk) != 0:
            raise LediError("zip dividido em vários volumes: não suportado")
        entries.append(entry)
        pos = record_end
    if len(entries) != declared:
        raise LediError(f"zip declara {declared} entradas e o diretório central tem {len(entries)}")
    return entries


def _check_zip_entries(entries, limits):
    """Everything about the entries that can be judged before reading them. Returns [(entry, top, cnes, uuid)]."""
    files, dirs = [], []
    for entry in sorted(entries, key=lambda e: e.name):
        name = entry.name
        if stat.S_ISLNK(entry.external_attr >> 16):
            raise LediError(f"link simbólico no lote: {_show(name)}", entry=_show(name))
        if entry.flags & 0x41:
            raise LediError(f"entrada criptografada no lote: {_show(name)}", entry=_show(name))
        if name.endswith("/"):
            _check_dir_name(name)
            if entry.size or entry.compressed:
                raise LediError(f"pasta com conteúdo no lote: {name}", entry=name)
            dirs.append(name)
            continue
        top, cnes, uuid = _check_member_name(name)
        files.append((top, cnes, uuid, entry))
    _check_layout([(top, cnes, uuid, e.name) for top, cnes, uuid, e in files], dirs)
    total = 0
    for _top, _cnes, _uuid, entry in files:
        name = entry.name
        if entry.method not in (_STORED, _DEFLATED):
            raise LediError(
                f"{name}: método de compressão {entry.method} não suportado (só armazenado ou deflate)", entry=name
            )
        if entry.method == _STORED and entry.compressed != entry.size:
            raise LediError(f"{name}: entrada armazenada com tamanhos diferentes no cabeçalho", entry=name)
        if entry.size > limits.max_ratio * max(entry.compressed, 1):
            raise LediError(
                f"{name}: taxa de compressão acima de {limits.max_ratio}:1 ({entry.compressed} bytes que se "
                f"expandem em {entry.size}): possível bomba zip",
                entry=name,
            )
        if entry.size > limits.max_entry_bytes:
            raise LediError(
                f"{name}: entrada de {entry.size} bytes (máximo {limits.max_entry_bytes} por entrada)", entry=name
            )
        total += entry.size
        if total > limits.max_total_bytes:
            raise LediError(f"lote com mais de {limits.max_total_bytes} bytes descompactados")
    return [(entry, cnes, uuid) for _top, cnes, uuid, entry in files]


def _check_local_headers(fp, entries, cd_offset):
    """Each entry's local header agrees with the central directory and no entry's data overlaps another's."""
    previous_end = 0
    for entry in sorted(entries, key=lambda e: e.offset):
        name = entry.name
        if entry.offset < previous_end:
            raise LediError(f"{name}: entradas sobrepostas no zip", entry=name)
        if entry.offset + _LOCAL.size > cd_offset:
            raise LediError(f"{name}: cabeçalho local fora do zip (truncado?)", entry=name)
        sig, _needed, flags, method, _t, _d, _crc, _csize, _size, name_len, extra_len = _LOCAL.unpack(
            _pread(fp, entry.offset, _LOCAL.size, "um cabeçalho local")
        )
        if sig != _SIG_LOCAL:
            raise LediError(f"{name}: cabeçalho local corrompido", entry=name)
        if method != entry.method or (flags & 0x41) != (entry.flags & 0x41):
            raise LediError(f"{name}: cabeçalho local difere do diretório central", entry=name)
        entry.data_start = entry.offset + _LOCAL.size + name_len + extra_len
        if entry.data_start > cd_offset:
            raise LediError(f"{name}: cabeçalho local fora do zip (truncado?)", entry=name)
        if _pread(fp, entry.offset + _LOCAL.size, name_len, "um cabeçalho local") != entry.raw_name:
            raise LediError(f"{name}: nome no cabeçalho local difere do diretório central", entry=name)
        previous_end = entry.data_start + entry.compressed
        if previous_end > cd_offset:
            raise LediError(f"{name}: dados da entrada passam do fim do zip (truncado?)", entry=name)


def _read_zip_entry(fp, entry):
    """The entry's bytes, read in chunks and never more than it declared; CRC and stream end checked."""
    name = entry.name
    fp.seek(entry.data_start)
    out = bytearray()
    left = entry.compressed
    if entry.method == _STORED:
        while left:
            chunk = fp.read(min(CHUNK, left))
            if not chunk:
                raise LediError(f"{name}: zip truncado no meio da entrada", entry=name)
            out += chunk
            left -= len(chunk)
    else:
        inflater = zlib.decompressobj(-15)
        pending = b""
        try:
            while not inflater.eof:
                if not pending:
                    if not left:
                        raise LediError(f"{name}: dados comprimidos terminam antes do fim (truncados)", entry=name)
                    pending = fp.read(min(CHUNK, left))
                    if not pending:
                        raise LediError(f"{name}: zip truncado no meio da entrada", entry=name)
                    left -= len(pending)
                out += inflater.decompress(pending, entry.size - len(out) + 1)
                pending = inflater.unconsumed_tail
                if len(out) > entry.size:
                    raise LediError(
                        f"{name}: a entrada descompacta em mais bytes do que os {entry.size} declarados", entry=name
                    )
        except zlib.error:
            raise LediError(f"{name}: dados comprimidos corrompidos", entry=name) from None
        if inflater.unused_data or pending or left:
            raise LediError(f"{name}: bytes sobrando depois dos dados comprimidos da entrada", entry=name)
    if len(out) != entry.size:
        raise LediError(
            f"{name}: a entrada tem {len(out)} bytes e o cabeçalho declara {entry.size} (tamanho mentiroso)",
            entry=name,
        )
    if zlib.crc32(out) != entry.crc:
        raise LediError(f"{name}: CRC errado (zip corrompido)", entry=name)
    return out


def _open_error(path, exc, dir_fd=None):
    shown = _show(os.fsdecode(path))
    try:
        is_link = stat.S_ISLNK(os.lstat(path, dir_fd=dir_fd).st_mode)
    except OSError:
        is_link = False
    if is_link or exc.errno == errno.ELOOP:
        return LediError(f"{shown} é um link simbólico (não é seguido)", entry=shown)
    if exc.errno == errno.ENOTDIR:
        return LediError(f"{shown} não é uma pasta", entry=shown)
    return LediError(f"não foi possível abrir {shown}: {exc.strerror or exc}", entry=shown)


def _open_regular(path, dir_fd=None):
    """A regular file opened without following a symlink, or LediError."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        raise _open_error(path, exc, dir_fd) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise LediError(f"{_show(os.fsdecode(path))} não é um arquivo comum")
    return fd, info.st_size


def read_lote_file(path, cnes=None, limits=None):
    """What a lote zip holds, after checking all of it (see the module's docstring), or LediError with the first
    problem (entry name included). ``cnes`` (7 digits): every record must be of that unit."""
    cnes = _want_cnes(cnes)
    limits = _check_limits(limits or Limits())
    fd, size = _open_regular(path)
    with os.fdopen(fd, "rb") as fp:
        try:
            cd_offset, cd_size, declared = _end_of_zip(fp, size)
            entries = _central_directory(fp, cd_offset, cd_size, declared, limits)
            files = _check_zip_entries(entries, limits)
            _check_local_headers(fp, entries, cd_offset)
            collector = _Collector(cnes)
            total = 0
            for entry, name_cnes, name_uuid in sorted(files, key=lambda item: item[0].offset):
                data = _read_zip_entry(fp, entry)
                total += len(data)
                if total > limits.max_total_bytes:
                    raise LediError(f"lote com mais de {limits.max_total_bytes} bytes descompactados")
                collector.add(entry.name, name_cnes, name_uuid, data)
        except OSError as exc:
            raise LediError(f"erro de leitura do arquivo: {exc.strerror or exc}") from None
    return collector.result()


# Directory ------------------------------------------------------------------------------------------------------


def _scan_dir(dir_fd, prefix, limits, found):
    """Append (relative name, kind) for each item of a directory (no symlink followed); kind: file, dir, link,
    other."""
    with os.scandir(dir_fd) as it:
        for item in it:
            if len(found) >= limits.max_entries:
                raise LediError(f"pasta com mais de {limits.max_entries} entradas")
            name = prefix + item.name
            if item.is_symlink():
                found.append((name, "link"))
            elif item.is_dir(follow_symlinks=False):
                found.append((name + "/", "dir"))
            elif item.is_file(follow_symlinks=False):
                found.append((name, "file"))
            else:
                found.append((name, "other"))


def _open_dir(name, dir_fd=None):
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        raise _open_error(name, exc, dir_fd) from None


def _read_dir_file(name, dir_fd, limits):
    """A file's bytes, read without following a symlink and never more than ``max_entry_bytes`` + 1."""
    base = name.rsplit("/", 1)[-1]
    fd, size = _open_regular(base, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as fp:
        if size > limits.max_entry_bytes:
            raise LediError(
                f"{_show(name)}: entrada de {size} bytes (máximo {limits.max_entry_bytes} por entrada)",
                entry=_show(name),
            )
        data = fp.read(limits.max_entry_bytes + 1)
    if len(data) > limits.max_entry_bytes:
        raise LediError(
            f"{_show(name)}: entrada com mais de {limits.max_entry_bytes} bytes (máximo por entrada)",
            entry=_show(name),
        )
    return data


def read_lote_dir(path, cnes=None, limits=None):
    """The same as :func:`read_lote_file` for a lote already unzipped (the ``RAS_Lote...`` directory): regular
    ``.esus`` files at its root or in one subdirectory; a symlink, a deeper directory or any other file is
    refused."""
    cnes = _want_cnes(cnes)
    limits = _check_limits(limits or Limits())
    fds = {None: _open_dir(path)}
    try:
        found = []
        _scan_dir(fds[None], "", limits, found)
        for name, kind in list(found):
            if kind == "dir":
                fds[name.rstrip("/")] = _open_dir(name.rstrip("/"), dir_fd=fds[None])
                _scan_dir(fds[name.rstrip("/")], name, limits, found)
        files, dirs = [], []
        for name, kind in sorted(found):
            if kind == "link":
                raise LediError(f"link simbólico no lote: {_show(name)}", entry=_show(name))
            if kind == "other":
                raise LediError(f"{_show(name)} não é um arquivo comum", entry=_show(name))
            if kind == "dir":
                _check_dir_name(name)
                dirs.append(name)
            else:
                top, name_cnes, name_uuid = _check_member_name(name)
                files.append((top, name_cnes, name_uuid, name))
        _check_layout(files, dirs)
        collector = _Collector(cnes)
        total = 0
        for top, name_cnes, name_uuid, name in files:
            data = _read_dir_file(name, fds[top], limits)
            total += len(data)
            if total > limits.max_total_bytes:
                raise LediError(f"lote com mais de {limits.max_total_bytes} bytes")
            collector.add(name, name_cnes, name_uuid, data)
    except OSError as exc:
        raise LediError(f"erro de leitura da pasta: {exc.strerror or exc}") from None
    finally:
        for fd in fds.values():
            os.close(fd)
    return collector.result()
