"""The strict LEDI reader: what a lote file holds, and that no byte sequence makes it crash, hang or allocate much.

Entries and zips are built from synthetic records (ledi_helpers), so every refusal below is checked against a file
that differs from a valid one in exactly the way the test names.
"""

from __future__ import annotations

import os
import random
import stat
import struct
import tracemalloc
import zipfile
import zlib

import pytest
from ledi_helpers import (
    BOOL,
    CNES,
    DOUBLE,
    FAKE_CPF,
    FAKE_EMAIL,
    FAKE_NAME,
    FAKE_PHONE,
    I32,
    I64,
    IBGE,
    INE,
    LIST,
    MAP,
    SET,
    STRING,
    STRUCT,
    UUIDS,
    central_records,
    dado_transporte,
    entry_info,
    entry_name,
    field,
    forced_zip64,
    i32,
    i64,
    instalacao,
    lote_zip,
    patch_entry,
    ras_lote,
    string,
    struct_,
)

from ansible_collections.sesdf.esus.plugins.module_utils import ledi
from ansible_collections.sesdf.esus.plugins.module_utils.ledi import (
    LediError,
    Limits,
    check_record,
    decode_dado_transporte,
    parse_lote_name,
    read_lote_dir,
    read_lote_file,
)

TOP = "RAS_Lote12_01-09-2026--10-30"
PERSONAL = (FAKE_CPF, FAKE_NAME, FAKE_PHONE, FAKE_EMAIL)


def write(tmp_path, data, name=f"{TOP}.zip"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def refused(fn, *args, **kwargs):
    with pytest.raises(LediError) as info:
        fn(*args, **kwargs)
    return info.value


# Entries -----------------------------------------------------------------------------------------------------


def test_valid_entry_round_trips_to_its_fields():
    rec = decode_dado_transporte(dado_transporte())
    assert rec == {
        "uuid": UUIDS[0],
        "tipo": 4,
        "cnes": CNES,
        "ibge": IBGE,
        "ine": INE,
        "num_lote": 7,
        "versao": "7.3.3",
        "ficha_bytes": len(struct_(field(STRING, 1, string("ficha-sintetica")), field(I64, 2, i64(42)))),
    }
    assert check_record(rec, CNES) == []


def test_absent_optional_fields_are_none():
    rec = decode_dado_transporte(dado_transporte(ibge=None, ine=None, num_lote=None, versao=None))
    assert (rec["ibge"], rec["ine"], rec["num_lote"], rec["versao"]) == (None, None, None, None)
    assert check_record(rec) == []


def test_upper_case_uuid_is_normalised_to_lower_case():
    rec = decode_dado_transporte(dado_transporte(uuid=UUIDS[0].upper()))
    assert rec["uuid"] == UUIDS[0]
    assert check_record({**rec, "uuid": UUIDS[0].upper()}) == []


def test_sender_and_originator_personal_data_is_never_in_the_result():
    rec = decode_dado_transporte(dado_transporte())
    for value in PERSONAL:
        assert value not in repr(rec)


def test_unknown_fields_of_every_type_are_skipped():
    unknown = b"".join(
        [
            field(BOOL, 40, b"\x01"),
            field(DOUBLE, 41, struct.pack(">d", 1.5)),
            field(STRING, 42, string("x" * 50)),
            field(LIST, 43, bytes([STRUCT]) + i32(2) + struct_() + struct_(field(I32, 1, i32(5)))),
            field(SET, 44, bytes([I64]) + i32(3) + i64(1) + i64(2) + i64(3)),
            field(MAP, 45, bytes([STRING, LIST]) + i32(1) + string("k") + bytes([I32]) + i32(1) + i32(9)),
            field(MAP, 46, bytes([I32, I64]) + i32(2) + (i32(1) + i64(2)) * 2),
            field(STRUCT, -3, struct_(field(STRING, 1, string("aninhado")))),
        ]
    )
    rec = decode_dado_transporte(dado_transporte(extra=unknown, remetente=instalacao(extra=unknown)))
    assert rec["uuid"] == UUIDS[0] and rec["tipo"] == 4


@pytest.mark.parametrize(
    ("fid", "reason"),
    [
        (1, "campo 1 (UUID) ausente"),
        (2, "campo 2 (tipo) ausente"),
        (3, "campo 3 (CNES) ausente"),
        (7, "campo 7 (ficha) ausente"),
        (8, "campo 8 (remetente) ausente"),
        (9, "campo 9 (originadora) ausente"),
    ],
)
def test_missing_required_field_is_refused_naming_it(fid, reason):
    assert refused(decode_dado_transporte, dado_transporte(omit=(fid,))).reason == reason


@pytest.mark.parametrize("fid", [1, 3, 4])
def test_missing_required_field_of_the_sender_is_refused(fid):
    error = refused(decode_dado_transporte, dado_transporte(remetente=instalacao(omit=(fid,))))
    assert error.reason.startswith("campo 8 (remetente): campo ")
    assert error.reason.endswith(" ausente")
    for value in PERSONAL:
        assert value not in error.reason


def test_version_without_revision_is_refused():
    versao = field(STRUCT, 10, struct_(field(I32, 1, i32(7)), field(I32, 2, i32(3))))
    error = refused(decode_dado_transporte, dado_transporte(replace={10: versao}))
    assert error.reason == "campo 10 (versão): campo 3 (revision) ausente"


def test_wrong_wire_type_for_a_known_field_is_refused():
    error = refused(decode_dado_transporte, dado_transporte(replace={3: field(I64, 3, i64(10001))}))
    assert error.reason == "campo 3 (CNES) com tipo i64 (esperado string) no byte 54"
    assert error.offset == 54


def test_wrong_wire_type_inside_the_sender_is_refused():
    remetente = struct_(field(I32, 3, i32(1)))
    error = refused(decode_dado_transporte, dado_transporte(remetente=remetente))
    assert "campo 8 (remetente): campo 3 (CPF ou CNPJ) com tipo i32 (esperado string)" in error.reason


def test_repeated_field_is_refused():
    error = refused(decode_dado_transporte, dado_transporte(extra=field(STRING, 3, string("0010002"))))
    assert error.reason.startswith("campo 3 (CNES) repetido")


def test_truncated_entry_is_refused_with_its_offset():
    data = dado_transporte()
    error = refused(decode_dado_transporte, data[:14])
    assert error.reason.startswith("entrada truncada no byte 14")
    assert error.offset is not None and error.offset <= 14


def test_trailing_bytes_are_refused():
    data = dado_transporte()
    error = refused(decode_dado_transporte, data + b"\x00\x00\x07")
    assert error.reason == f"bytes sobrando após o fim do registro: 3 a partir do byte {len(data)}"


def test_empty_entry_is_refused():
    assert refused(decode_dado_transporte, b"").reason == "entrada vazia (0 bytes)"


def test_text_that_is_not_utf8_is_refused():
    error = refused(decode_dado_transporte, dado_transporte(replace={3: field(STRING, 3, string(b"\xff\xfe001"))}))
    assert "campo 3 (CNES) não é texto UTF-8 válido" in error.reason


def test_negative_length_is_refused():
    error = refused(decode_dado_transporte, dado_transporte(replace={3: field(STRING, 3, i32(-1))}))
    assert "comprimento negativo (-1)" in error.reason


def test_unknown_wire_type_is_refused():
    error = refused(decode_dado_transporte, dado_transporte(extra=bytes([7]) + struct.pack(">h", 50)))
    assert "tipo de dado 7 desconhecido" in error.reason


def test_huge_length_on_a_14_byte_entry_is_refused_without_allocating():
    data = field(STRING, 1, i32(2**31 - 1)) + b"\x00" * 7
    assert len(data) == 14
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(LediError) as info:
            decode_dado_transporte(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.reason.startswith("entrada truncada no byte 14: campo 1 (UUID) declara 2147483647 bytes")
    assert peak < 64 * 1024


@pytest.mark.parametrize(
    "payload",
    [
        bytes([BOOL]) + i32(2**31 - 1),
        bytes([STRUCT]) + i32(2**31 - 1),
        bytes([I64, I64]) + i32(2**31 - 1),
    ],
    ids=["list", "list-of-structs", "map"],
)
def test_container_claiming_more_elements_than_bytes_left_is_refused(payload):
    kind = MAP if len(payload) == 6 else LIST
    error = refused(decode_dado_transporte, dado_transporte(extra=field(kind, 60, payload)))
    assert "declara 2147483647 elementos" in error.reason


def nested(levels):
    inner = struct_()
    for _unused in range(levels - 1):
        inner = struct_(field(STRUCT, 1, inner))
    return field(STRUCT, 99, inner)


def test_unknown_structs_nested_up_to_the_depth_limit_are_skipped():
    # the entry is level 1, so an unknown struct field may nest 15 levels
    assert decode_dado_transporte(dado_transporte(extra=nested(ledi.MAX_DEPTH - 1)))["tipo"] == 4


def test_deeply_nested_unknown_structs_are_refused_by_depth():
    error = refused(decode_dado_transporte, dado_transporte(extra=nested(ledi.MAX_DEPTH)))
    assert f"estruturas aninhadas além de {ledi.MAX_DEPTH} níveis" in error.reason
    error = refused(decode_dado_transporte, dado_transporte(extra=nested(5000)))
    assert "estruturas aninhadas" in error.reason


def test_deeply_nested_lists_are_refused_by_depth():
    inner = bytes([I32]) + i32(0)
    for _unused in range(40):
        inner = bytes([LIST]) + i32(1) + inner
    error = refused(decode_dado_transporte, dado_transporte(extra=field(LIST, 61, inner)))
    assert "estruturas aninhadas" in error.reason


# Fuzz ----------------------------------------------------------------------------------------------------------


def judged(data):
    """Decode: a record that check_record can judge, or LediError; anything else fails the test."""
    try:
        rec = decode_dado_transporte(data)
    except LediError as exc:
        assert exc.reason
        return None
    assert isinstance(check_record(rec), list)
    return rec


def test_every_truncation_prefix_is_refused():
    data = dado_transporte()
    for cut in range(len(data)):
        with pytest.raises(LediError):
            decode_dado_transporte(data[:cut])


def test_random_trailing_bytes_are_refused():
    rng = random.Random(20260901)  # noqa: S311 - reproducible fuzz, not cryptography
    data = dado_transporte()
    for _unused in range(500):
        tail = rng.randbytes(rng.randint(1, 40))
        error = refused(decode_dado_transporte, data + tail)
        assert "bytes sobrando" in error.reason


def test_every_single_byte_flip_decodes_or_is_refused():
    rng = random.Random(4242)  # noqa: S311 - reproducible fuzz, not cryptography
    data = dado_transporte()
    for pos in range(len(data)):
        for value in {data[pos] ^ 0xFF, data[pos] ^ 0x80, data[pos] ^ 0x01, rng.randrange(256)} - {data[pos]}:
            judged(data[:pos] + bytes([value]) + data[pos + 1 :])


def test_random_mutations_and_garbage_decode_or_are_refused():
    rng = random.Random(777)  # noqa: S311 - reproducible fuzz, not cryptography
    data = dado_transporte()
    for _unused in range(3000):
        mutated = bytearray(data)
        for _unused in range(rng.randint(1, 6)):
            op = rng.randrange(3)
            pos = rng.randrange(len(mutated))
            if op == 0:
                mutated[pos] = rng.randrange(256)
            elif op == 1:
                mutated[pos:pos] = rng.randbytes(rng.randint(1, 8))
            else:
                del mutated[pos : pos + rng.randint(1, 8)]
        judged(bytes(mutated))
    for _unused in range(1000):
        judged(rng.randbytes(rng.randint(0, 64)))


# check_record ---------------------------------------------------------------------------------------------------


def good(**over):
    rec = decode_dado_transporte(dado_transporte())
    rec.update(over)
    return rec


def test_foreign_cnes_is_reported_with_the_expected_one():
    assert check_record(good(cnes="1234567"), cnes="7654321") == ["CNES 1234567 de outra unidade (esperado 7654321)"]


def test_six_digit_ibge_is_refused():
    assert check_record(good(ibge="530010")) == [
        "código IBGE 530010 com 6 dígitos: o LEDI pede os 7 dígitos, com o dígito verificador"
    ]


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"uuid": "not-a-uuid"}, "UUID com 10 caracteres: esperado um UUID"),
        ({"uuid": UUIDS[0].replace("-", "")}, "UUID com 32 caracteres"),
        ({"uuid": UUIDS[0][:-1] + "g"}, "UUID com 36 caracteres"),
        ({"cnes": "001000"}, "CNES com 6 caracteres: esperados 7 dígitos"),
        ({"cnes": "00100a1"}, "CNES com 7 caracteres: esperados 7 dígitos"),
        ({"cnes": "\u0660" * 7}, "CNES com 7 caracteres"),
        ({"ine": "000001234"}, "INE com 9 caracteres: esperados 10 dígitos"),
        ({"ibge": "53001080"}, "código IBGE com 8 caracteres: esperados 7 dígitos"),
        ({"tipo": 0}, "tipo de ficha 0 inválido"),
        ({"tipo": -5}, "tipo de ficha -5 inválido"),
        ({"ficha_bytes": 0}, "ficha vazia (0 bytes)"),
    ],
)
def test_malformed_record_values_are_reported(over, expected):
    problems = check_record(good(**over))
    assert len(problems) == 1 and problems[0].startswith(expected)


def test_problems_never_echo_a_malformed_value():
    problems = check_record(good(cnes=FAKE_CPF, ine=FAKE_CPF, uuid=FAKE_NAME))
    assert len(problems) == 3
    assert FAKE_CPF not in repr(problems) and FAKE_NAME not in repr(problems)


def test_expected_cnes_must_be_seven_digits():
    with pytest.raises(ValueError, match="7 digits") as info:
        check_record(good(), cnes="10001")
    assert not isinstance(info.value, LediError)


# Names -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("RAS_Lote12_01-09-2026--10-30.zip", {"number": 12, "exported_at": "2026-09-01T10:30"}),
        ("RAS_Lote12_01-09-2026--10-30", {"number": 12, "exported_at": "2026-09-01T10:30"}),
        ("/inbox/RAS_Lote3_31-12-2025--23-59/", {"number": 3, "exported_at": "2025-12-31T23:59"}),
        ("RAS_Lote12_01-09-2026--10-30 (1).zip", {"number": 12, "exported_at": "2026-09-01T10:30"}),
        ("RAS_Lote12_31-02-2026--10-30.zip", None),
        ("RAS_Lote12_01-09-2026--24-00.zip", None),
        ("RAS_Lote_01-09-2026--10-30.zip", None),
        ("RAS_Lote12_1-9-2026--10-30.zip", None),
        ("RAS_Lote12_01-09-2026--10-30.zip.part", None),
        ("lote-0010001-5.zip", None),
        (None, None),
    ],
)
def test_parse_lote_name(name, expected):
    assert parse_lote_name(name) == expected
    if expected is not None:
        assert ledi.LOTE_FILE_NAME.fullmatch(os.path.basename(name.rstrip("/")))


# Zip files -------------------------------------------------------------------------------------------------------

RECORDS = [
    {"uuid": UUIDS[0], "tipo": 4},
    {"uuid": UUIDS[1], "tipo": 4, "num_lote": 8},
    {"uuid": UUIDS[2].upper(), "tipo": 2, "ine": None, "versao": (7, 2, 1)},
    {"uuid": UUIDS[3], "tipo": 14, "ibge": None},
]
EXPECTED = {
    "entries": 4,
    "records_by_type": {2: 1, 4: 2, 14: 1},
    "uuids": sorted(UUIDS[:4]),
    "cnes": [CNES],
    "ibge": [IBGE],
    "ines": [INE],
    "versions": ["7.2.1", "7.3.3"],
    "lote_numbers": [7, 8],
}


def test_ras_lote_zip_with_cnes_prefixed_entries_in_one_directory_is_read(tmp_path):
    result = read_lote_file(write(tmp_path, ras_lote(RECORDS)), cnes=CNES)
    assert result == EXPECTED
    for value in PERSONAL:
        assert value not in repr(result)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_lote_zip_with_uuid_entries_at_the_root_is_read(tmp_path, method):
    assert read_lote_file(write(tmp_path, ras_lote(RECORDS, top=None, prefix=False, method=method))) == EXPECTED


def test_lote_zip_without_directory_entry_is_read(tmp_path):
    data = lote_zip([(entry_name(UUIDS[0], top=TOP), dado_transporte())])
    assert read_lote_file(write(tmp_path, data))["uuids"] == [UUIDS[0]]


def test_zip_with_data_descriptors_is_read(tmp_path):
    data = ras_lote(RECORDS, streamed=True)
    assert entry_info(data, entry_name(UUIDS[0], top=TOP)).flag_bits & 0x08
    assert read_lote_file(write(tmp_path, data)) == EXPECTED


def test_zip64_end_records_are_understood(tmp_path):
    with forced_zip64():
        data = ras_lote(RECORDS)
    assert b"PK\x06\x06" in data
    assert read_lote_file(write(tmp_path, data)) == EXPECTED


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "não é um zip (arquivo curto demais ou truncado)"),
        (b"isto nao e um zip, apenas texto qualquer" * 5, "não é um zip válido"),
        (bytes(range(256)) * 4, "não é um zip válido"),
    ],
    ids=["empty-file", "text", "garbage"],
)
def test_garbage_is_refused(tmp_path, data, reason):
    assert refused(read_lote_file, write(tmp_path, data)).reason.startswith(reason)


def test_every_truncation_of_a_zip_is_refused(tmp_path):
    data = ras_lote(RECORDS[:2])
    for cut in range(0, len(data), 7):
        with pytest.raises(LediError):
            read_lote_file(write(tmp_path, data[:cut]))
    assert "truncado" in refused(read_lote_file, write(tmp_path, data[:-1])).reason


def test_bytes_appended_or_prepended_to_a_zip_are_refused(tmp_path):
    data = ras_lote(RECORDS[:1])
    assert "depois do registro final" in refused(read_lote_file, write(tmp_path, data + b"lixo")).reason
    assert "dados antes do zip" in refused(read_lote_file, write(tmp_path, b"MZ" * 10 + data)).reason


def test_end_record_lying_about_the_entry_count_is_refused(tmp_path):
    data = bytearray(ras_lote(RECORDS))
    struct.pack_into("<HH", data, len(data) - 22 + 8, 0xFFFE, 0xFFFE)
    reason = refused(read_lote_file, write(tmp_path, bytes(data))).reason
    assert reason == "zip declara 65534 entradas e o diretório central tem 5"
    limits = Limits(max_entries=1000)
    assert refused(read_lote_file, write(tmp_path, bytes(data)), limits=limits).reason == (
        "zip com 65534 entradas (máximo 1000)"
    )


def test_empty_zip_is_refused(tmp_path):
    assert refused(read_lote_file, write(tmp_path, lote_zip([]))).reason == "lote sem nenhuma entrada .esus (vazio)"
    only_dir = lote_zip([], dirs=[f"{TOP}/"])
    assert refused(read_lote_file, write(tmp_path, only_dir)).reason == "lote sem nenhuma entrada .esus (vazio)"


def test_wrong_crc_is_refused(tmp_path):
    data = ras_lote(RECORDS[:2])
    name = entry_name(UUIDS[1], top=TOP)
    bad = patch_entry(data, name, crc=entry_info(data, name).CRC ^ 1)
    assert refused(read_lote_file, write(tmp_path, bad)).reason == f"{name}: CRC errado (zip corrompido)"


def test_corrupted_compressed_bytes_are_refused(tmp_path):
    data = bytearray(ras_lote(RECORDS[:1], top=None))
    info = entry_info(bytes(data), entry_name(UUIDS[0]))
    start = info.header_offset + 30 + len(info.filename)
    data[start : start + 4] = b"\xff\xff\xff\xff"
    error = refused(read_lote_file, write(tmp_path, bytes(data)))
    assert error.entry == entry_name(UUIDS[0])


@pytest.mark.parametrize(
    ("entries", "dirs", "reason"),
    [
        ([("notas.txt", b"x")], (), "entrada que não é .esus no lote: notas.txt"),
        ([(f"{TOP}/Thumbs.db", b"x")], (), f"entrada que não é .esus no lote: {TOP}/Thumbs.db"),
        (
            [(f"__MACOSX/{TOP}/._{CNES}-{UUIDS[1]}.esus", b"x")],
            ("__MACOSX/",),
            "entrada .esus fora da pasta do lote (mais de um nível de pastas)",
        ),
        ([], ("__MACOSX/",), "pasta inesperada no lote: __MACOSX/"),
        ([(f"../{CNES}-{UUIDS[1]}.esus", b"x")], (), "nome de entrada não permitido (com '..', '.' ou '//')"),
        ([(f"/tmp/{UUIDS[1]}.esus", b"x")], (), "nome de entrada não permitido (absoluto ou com barra invertida)"),
        ([(f"{TOP}\\{UUIDS[1]}.esus", b"x")], (), "nome de entrada não permitido (absoluto ou com barra invertida)"),
        ([("outra/" + entry_name(UUIDS[1]), b"x")], (), "entradas .esus em mais de um lugar do lote"),
        ([("x-" + entry_name(UUIDS[1]), b"x")], (), "entrada .esus com nome fora do padrão"),
        ([(f"{TOP}/sub/", b"")], (), "pasta inesperada no lote"),
    ],
    ids=[
        "text-file",
        "thumbs-db",
        "macosx-entry",
        "macosx-dir",
        "dot-dot",
        "absolute",
        "backslash",
        "two-places",
        "bad-name",
        "deep-dir",
    ],
)
def test_foreign_or_unsafe_entries_are_refused(tmp_path, entries, dirs, reason):
    valid = [(entry_name(UUIDS[0], top=TOP), dado_transporte())]
    data = lote_zip(valid + list(entries), dirs=[f"{TOP}/", *dirs])
    assert reason in refused(read_lote_file, write(tmp_path, data)).reason


def test_symlink_entry_is_refused(tmp_path):
    link = entry_name(UUIDS[1], top=TOP)
    data = lote_zip([(entry_name(UUIDS[0], top=TOP), dado_transporte()), (link, b"/etc/passwd")], symlinks=(link,))
    assert refused(read_lote_file, write(tmp_path, data)).reason == f"link simbólico no lote: {link}"


def test_encrypted_entry_is_refused(tmp_path):
    data = ras_lote(RECORDS[:1], top=None)
    bad = patch_entry(data, entry_name(UUIDS[0]), flags=0x1)
    assert refused(read_lote_file, write(tmp_path, bad)).reason.startswith("entrada criptografada no lote")


def test_unsupported_compression_is_refused(tmp_path):
    data = ras_lote(RECORDS[:1], top=None, method=zipfile.ZIP_BZIP2)
    assert "método de compressão 12 não suportado" in refused(read_lote_file, write(tmp_path, data)).reason


def test_duplicate_uuids_are_refused(tmp_path):
    same = dado_transporte()
    data = lote_zip([(entry_name(UUIDS[0]), same), (entry_name(UUIDS[0], prefix=False), same)])
    error = refused(read_lote_file, write(tmp_path, data))
    assert error.reason.endswith(f"UUID {UUIDS[0]} repetido no lote (também em {entry_name(UUIDS[0])})")


def test_same_entry_name_twice_is_refused(tmp_path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = lote_zip([(entry_name(UUIDS[0]), dado_transporte())] * 2)
    assert "repetido no lote" in refused(read_lote_file, write(tmp_path, data)).reason


def test_foreign_cnes_is_refused(tmp_path):
    data = ras_lote([{"uuid": UUIDS[0]}, {"uuid": UUIDS[1], "cnes": "0010002"}])
    error = refused(read_lote_file, write(tmp_path, data), cnes=CNES)
    name = entry_name(UUIDS[1], cnes="0010002", top=TOP)
    assert error.reason == f"{name}: CNES 0010002 de outra unidade (esperado {CNES})"
    assert error.entry == name


def test_six_digit_ibge_in_a_lote_is_refused(tmp_path):
    data = ras_lote([{"uuid": UUIDS[0], "ibge": "530010"}])
    assert "código IBGE 530010 com 6 dígitos" in refused(read_lote_file, write(tmp_path, data)).reason


def test_entry_name_must_carry_the_record_uuid_and_cnes(tmp_path):
    data = lote_zip([(entry_name(UUIDS[5]), dado_transporte(uuid=UUIDS[0]))])
    reason = refused(read_lote_file, write(tmp_path, data)).reason
    assert reason.endswith(f"o UUID do registro ({UUIDS[0]}) difere do nome da entrada")
    data = lote_zip([(entry_name(UUIDS[0], cnes="0010002"), dado_transporte())])
    reason = refused(read_lote_file, write(tmp_path, data)).reason
    assert reason.endswith(f"o CNES do nome da entrada (0010002) difere do CNES do registro ({CNES})")


def test_undecodable_entry_is_refused_with_its_name_and_offset(tmp_path):
    data = lote_zip([(entry_name(UUIDS[0]), dado_transporte()[:14])])
    error = refused(read_lote_file, write(tmp_path, data))
    assert error.reason.startswith(f"{entry_name(UUIDS[0])}: entrada truncada no byte 14")
    assert error.entry == entry_name(UUIDS[0]) and error.offset is not None


def test_entry_whose_data_is_bigger_than_its_declared_size_is_refused(tmp_path):
    data = ras_lote(RECORDS[:1], top=None)
    name = entry_name(UUIDS[0])
    bad = patch_entry(data, name, size=entry_info(data, name).file_size - 10)
    assert "descompacta em mais bytes do que os" in refused(read_lote_file, write(tmp_path, bad)).reason


def test_entry_whose_data_is_smaller_than_its_declared_size_is_refused(tmp_path):
    data = ras_lote(RECORDS[:1], top=None)
    name = entry_name(UUIDS[0])
    size = entry_info(data, name).file_size
    bad = patch_entry(data, name, size=size + 10)
    reason = refused(read_lote_file, write(tmp_path, bad)).reason
    assert reason == f"{name}: a entrada tem {size} bytes e o cabeçalho declara {size + 10} (tamanho mentiroso)"


def test_entry_whose_compressed_size_lies_is_refused(tmp_path):
    data = ras_lote(RECORDS[:1], top=None)
    name = entry_name(UUIDS[0])
    info = entry_info(data, name)
    shorter = patch_entry(data, name, compressed=info.compress_size - 5)
    assert "terminam antes do fim" in refused(read_lote_file, write(tmp_path, shorter)).reason
    stored = ras_lote(RECORDS[:1], top=None, method=zipfile.ZIP_STORED)
    lying = patch_entry(stored, name, size=info.file_size + 1)
    assert "entrada armazenada com tamanhos diferentes" in refused(read_lote_file, write(tmp_path, lying)).reason


def test_entry_pointing_into_another_is_refused(tmp_path):
    data = ras_lote(RECORDS[:2], top=None)
    first, second = entry_name(UUIDS[0]), entry_name(UUIDS[1])
    out = bytearray(data)
    struct.pack_into("<L", out, central_records(data)[second] + 42, entry_info(data, first).header_offset)
    assert "entradas sobrepostas" in refused(read_lote_file, write(tmp_path, bytes(out))).reason


@pytest.fixture(scope="module")
def zeros_50mb():
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1024 * 1024)
    body = b"".join(compressor.compress(block) for _unused in range(50)) + compressor.flush()
    return body, zlib.crc32(bytes(50 * 1024 * 1024)), 50 * 1024 * 1024


def bomb_zip(body, crc, declared):
    """A zip with one deflated entry of the given raw stream, declaring ``declared`` bytes."""
    name = entry_name(UUIDS[0]).encode()
    local = struct.pack("<4sHHHHHLLLHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(body), declared, len(name), 0)
    central = struct.pack(
        "<4sHHHHHHLLLHHHHHLL", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(body), declared, len(name), 0, 0, 0, 0,
        0o644 << 16, 0,
    )  # fmt: skip
    cd_offset = len(local) + len(name) + len(body)
    end = struct.pack("<4sHHHHLLH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), cd_offset, 0)
    return local + name + body + central + name + end


def test_high_ratio_zip_bomb_is_refused_before_reading(tmp_path, zeros_50mb):
    body, crc, size = zeros_50mb
    reason = refused(read_lote_file, write(tmp_path, bomb_zip(body, crc, size))).reason
    assert "taxa de compressão acima de 200:1" in reason and "possível bomba zip" in reason


def test_zip_bomb_lying_about_its_size_is_refused_while_reading_without_allocating(tmp_path, zeros_50mb):
    body, crc, _size = zeros_50mb
    path = write(tmp_path, bomb_zip(body, crc, 2000 * 1024))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(LediError) as info:
            read_lote_file(path, limits=Limits(max_ratio=10**6))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "descompacta em mais bytes do que os 2048000 declarados" in info.value.reason
    assert peak < 6 * 1024 * 1024


def test_limits_on_entries_and_sizes_are_enforced(tmp_path):
    path = write(tmp_path, ras_lote(RECORDS))
    # four .esus entries and their directory: five zip entries
    assert "zip com 5 entradas (máximo 4)" in refused(read_lote_file, path, limits=Limits(max_entries=4)).reason
    assert "máximo 100 por entrada" in refused(read_lote_file, path, limits=Limits(max_entry_bytes=100)).reason
    assert "lote com mais de 500 bytes" in refused(read_lote_file, path, limits=Limits(max_total_bytes=500)).reason
    assert read_lote_file(path, limits=Limits(max_entries=5))["entries"] == 4


def test_random_damage_to_a_zip_is_refused_or_read(tmp_path):
    rng = random.Random(99)  # noqa: S311 - reproducible fuzz, not cryptography
    data = ras_lote(RECORDS[:2])
    path = tmp_path / "fuzz.zip"
    for _unused in range(1500):
        mutated = bytearray(data)
        for _unused in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        path.write_bytes(bytes(mutated))
        try:
            result = read_lote_file(str(path))
        except LediError as exc:
            assert exc.reason
        else:
            assert result["entries"] == 2


def test_a_symlink_instead_of_the_zip_is_refused(tmp_path):
    target = write(tmp_path, ras_lote(RECORDS))
    os.symlink(target, tmp_path / "link.zip")
    assert "é um link simbólico" in refused(read_lote_file, str(tmp_path / "link.zip")).reason


# Directories -----------------------------------------------------------------------------------------------------


def unzip(tmp_path, records=None, top=TOP):
    records = RECORDS if records is None else records
    root = tmp_path / "inbox" / TOP
    root.mkdir(parents=True)
    base = root / top if top else root
    base.mkdir(exist_ok=True)
    for rec in records:
        (base / entry_name(rec["uuid"], rec.get("cnes", CNES))).write_bytes(dado_transporte(**rec))
    return root


def test_unzipped_lote_directory_is_read(tmp_path):
    result = read_lote_dir(str(unzip(tmp_path, top=None)), cnes=CNES)
    assert result == EXPECTED
    for value in PERSONAL:
        assert value not in repr(result)


def test_unzipped_lote_with_its_own_top_directory_is_read(tmp_path):
    assert read_lote_dir(str(unzip(tmp_path))) == EXPECTED


def test_symlink_inside_a_lote_directory_is_refused(tmp_path):
    root = unzip(tmp_path, top=None)
    outside = tmp_path / "fora.esus"
    outside.write_bytes(dado_transporte(uuid=UUIDS[9]))
    os.symlink(outside, root / entry_name(UUIDS[9]))
    assert refused(read_lote_dir, str(root)).reason == f"link simbólico no lote: {entry_name(UUIDS[9])}"


def test_lote_directory_that_is_a_symlink_is_refused(tmp_path):
    root = unzip(tmp_path, top=None)
    os.symlink(root, tmp_path / "link")
    assert "é um link simbólico" in refused(read_lote_dir, str(tmp_path / "link")).reason


def test_lote_directory_with_foreign_files_is_refused(tmp_path):
    root = unzip(tmp_path, top=None)
    (root / ".DS_Store").write_bytes(b"x")
    assert refused(read_lote_dir, str(root)).reason == "entrada que não é .esus no lote: .DS_Store"


def test_lote_directory_with_a_fifo_or_a_deeper_directory_is_refused(tmp_path):
    root = unzip(tmp_path)
    os.mkfifo(root / TOP / entry_name(UUIDS[9]))
    assert refused(read_lote_dir, str(root)).reason.endswith("não é um arquivo comum")
    os.unlink(root / TOP / entry_name(UUIDS[9]))
    (root / TOP / "sub").mkdir()
    assert refused(read_lote_dir, str(root)).reason == f"pasta inesperada no lote: {TOP}/sub/"


def test_lote_directory_entries_are_checked_like_zip_entries(tmp_path):
    root = unzip(tmp_path, records=[{"uuid": UUIDS[0]}, {"uuid": UUIDS[1], "cnes": "0010002"}], top=None)
    assert "de outra unidade" in refused(read_lote_dir, str(root), cnes=CNES).reason
    (root / entry_name(UUIDS[0])).write_bytes(dado_transporte(uuid=UUIDS[0]) + b"\x00")
    assert "bytes sobrando" in refused(read_lote_dir, str(root)).reason
    os.chmod(root / entry_name(UUIDS[0]), stat.S_IRUSR | stat.S_IWUSR)
    big = Limits(max_entry_bytes=50)
    assert "máximo 50 por entrada" in refused(read_lote_dir, str(root), limits=big).reason


def test_empty_lote_directory_is_refused(tmp_path):
    root = tmp_path / TOP
    root.mkdir()
    assert refused(read_lote_dir, str(root)).reason == "lote sem nenhuma entrada .esus (vazio)"
