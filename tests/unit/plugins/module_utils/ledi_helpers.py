"""Builds LEDI entries (DadoTransporteThrift, TBinaryProtocol) and RAS_Lote zips from synthetic records, for the
tests of ``ledi``; nothing here is a real record (the CPF is a made-up valid-looking number, the names are fake)."""

from __future__ import annotations

import contextlib
import io
import stat
import struct
import zipfile

BOOL, BYTE, DOUBLE, I16, I32, I64, STRING, STRUCT, MAP, SET, LIST = 2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15

FAKE_CPF = "00000000191"
FAKE_NAME = "Fulana Sintetica de Teste"
FAKE_PHONE = "61999990000"
FAKE_EMAIL = "fulana.sintetica@example.invalid"
CNES = "0010001"
IBGE = "5300108"
INE = "0000012345"
UUIDS = [f"{n:08x}-aaaa-4bbb-8ccc-{n:012x}" for n in range(1, 200)]


def field(ftype, fid, payload):
    return bytes([ftype]) + struct.pack(">h", fid) + payload


def string(value):
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return struct.pack(">i", len(raw)) + raw


def i32(value):
    return struct.pack(">i", value)


def i64(value):
    return struct.pack(">q", value)


def struct_(*fields):
    return b"".join(fields) + b"\x00"


def instalacao(cpf=FAKE_CPF, nome=FAKE_NAME, omit=(), extra=b""):
    values = {
        1: field(STRING, 1, string("PEC-CONTRA-CHAVE")),
        2: field(STRING, 2, string("11111111-2222-4333-8444-555555555555")),
        3: field(STRING, 3, string(cpf)),
        4: field(STRING, 4, string(nome)),
        5: field(STRING, 5, string(FAKE_PHONE)),
        6: field(STRING, 6, string(FAKE_EMAIL)),
        7: field(STRING, 7, string("5.5.28")),
        8: field(STRING, 8, string("PostgreSQL")),
    }
    return struct_(*(v for k, v in values.items() if k not in omit), extra)


def ficha():
    """A stand-in for a serialized ficha (itself TBinaryProtocol; never decoded by the reader)."""
    return struct_(field(STRING, 1, string("ficha-sintetica")), field(I64, 2, i64(42)))


def dado_transporte(
    uuid=UUIDS[0],
    tipo=4,
    cnes=CNES,
    ibge=IBGE,
    ine=INE,
    num_lote=7,
    ficha_bytes=None,
    versao=(7, 3, 3),
    remetente=None,
    originadora=None,
    omit=(),
    extra=b"",
    replace=None,
):
    """One DadoTransporteThrift entry. ``None`` leaves an optional field out; ``omit`` drops any field id;
    ``replace`` {id: raw field bytes} puts other bytes in its place; ``extra`` goes before the STOP."""
    values = {
        1: field(STRING, 1, string(uuid)),
        2: field(I64, 2, i64(tipo)),
        3: field(STRING, 3, string(cnes)),
        4: None if ibge is None else field(STRING, 4, string(ibge)),
        5: None if ine is None else field(STRING, 5, string(ine)),
        6: None if num_lote is None else field(I64, 6, i64(num_lote)),
        7: field(STRING, 7, string(ficha() if ficha_bytes is None else ficha_bytes)),
        8: field(STRUCT, 8, remetente if remetente is not None else instalacao()),
        9: field(STRUCT, 9, originadora if originadora is not None else instalacao()),
        10: None
        if versao is None
        else field(STRUCT, 10, struct_(*(field(I32, i + 1, i32(v)) for i, v in enumerate(versao)))),
    }
    values.update(replace or {})
    return struct_(*(v for k, v in values.items() if v is not None and k not in omit), extra)


def entry_name(uuid, cnes=CNES, prefix=True, top=None):
    name = f"{cnes}-{uuid}.esus" if prefix else f"{uuid}.esus"
    return f"{top}/{name}" if top else name


class _Unseekable(io.BytesIO):
    """Written like a download stream: zipfile then puts CRC and sizes in data descriptors after each entry and
    zeros in the local headers, as Java's ZipOutputStream does for deflated entries."""

    def seek(self, *args):
        raise OSError("unseekable")


def lote_zip(entries, dirs=(), method=zipfile.ZIP_DEFLATED, symlinks=(), streamed=False):
    """A zip of [(name, bytes)] entries (and directory entries ``dirs``), in the given order."""
    buffer = _Unseekable() if streamed else io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in dirs:
            info = zipfile.ZipInfo(name, date_time=(2026, 9, 1, 10, 30, 0))
            info.external_attr = (stat.S_IFDIR | 0o755) << 16
            archive.writestr(info, b"")
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2026, 9, 1, 10, 30, 0))
            info.compress_type = method
            mode = (stat.S_IFLNK | 0o777) if name in symlinks else (stat.S_IFREG | 0o644)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def ras_lote(records, top="RAS_Lote12_01-09-2026--10-30", prefix=True, method=zipfile.ZIP_DEFLATED, streamed=False):
    """A RAS_Lote zip as the PEC saves it: one top directory (or the root when ``top`` is None) of
    ``<CNES>-<uuid>.esus`` (or ``<uuid>.esus``) entries, one per record (dicts of dado_transporte's arguments)."""
    entries = [
        (entry_name(rec.get("uuid", UUIDS[0]), rec.get("cnes", CNES), prefix, top), dado_transporte(**rec))
        for rec in records
    ]
    return lote_zip(entries, dirs=[f"{top}/"] if top else (), method=method, streamed=streamed)


@contextlib.contextmanager
def forced_zip64():
    """zipfile writes the zip64 end records (as Java does past 65535 entries) for any entry count."""
    saved = zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP_FILECOUNT_LIMIT = 1
    try:
        yield
    finally:
        zipfile.ZIP_FILECOUNT_LIMIT = saved


def central_records(data):
    """{name: offset of its central directory record} of a zip built by lote_zip."""
    end = data.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<LL", data, end + 12)
    records, pos = {}, cd_offset
    while pos < cd_offset + cd_size:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        records[data[pos + 46 : pos + 46 + name_len].decode()] = pos
        pos += 46 + name_len + extra_len + comment_len
    return records


def patch_entry(data, name, crc=None, compressed=None, size=None, flags=None, local=True):
    """The zip with an entry's CRC, sizes or flags rewritten in the central directory (and its local header)."""
    out = bytearray(data)
    cd = central_records(data)[name]
    header = struct.unpack_from("<L", data, cd + 42)[0]
    spots = [(cd + 8, cd + 16)] + ([(header + 6, header + 14)] if local else [])
    for flag_at, crc_at in spots:
        if flags is not None:
            struct.pack_into("<H", out, flag_at, flags)
        if crc is not None:
            struct.pack_into("<L", out, crc_at, crc)
        if compressed is not None:
            struct.pack_into("<L", out, crc_at + 4, compressed)
        if size is not None:
            struct.pack_into("<L", out, crc_at + 8, size)
    return bytes(out)


def entry_info(data, name):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.getinfo(name)
