import io
from pathlib import Path

import pytest

from services.eligibility import rules
from services.eligibility.registry_csv import (
    MAX_ERRORS, PREFECTURES, InstitutionRow, MemberRow, RegistryFileError, UndecodableFile, detect_encoding,
    normalize_member_no, normalize_name, parse_institutions, parse_members, read_members,
)

DEMO = Path(__file__).resolve().parents[2] / "demo"
MEMBER_HEADER = "member_no,name,name_kana,prefecture,status\n"
INSTITUTION_HEADER = (
    "institution_id,name,kind,prefecture,founder_member_no,manager_member_no\n"
)


def member_errors(text):
    with pytest.raises(RegistryFileError) as excinfo:
        parse_members(text)
    return excinfo.value.errors


def institution_errors(text):
    with pytest.raises(RegistryFileError) as excinfo:
        parse_institutions(text)
    return excinfo.value.errors


def codes(errors):
    return [(e.line, e.field, e.code) for e in errors]


# --- good files ----------------------------------------------------------------------

def test_parses_members():
    text = MEMBER_HEADER + "M0001,見本 太郎,ミホン タロウ,東京都,active\n" \
        "M0002,架空 花子,カクウ ハナコ,大阪府,withdrawn\n"
    assert parse_members(text) == [
        MemberRow("M0001", "見本 太郎", "ミホン タロウ", "東京都", "active"),
        MemberRow("M0002", "架空 花子", "カクウ ハナコ", "大阪府", "withdrawn"),
    ]


def test_parses_institutions_with_one_link_empty():
    text = INSTITUTION_HEADER + "I0001,架空クリニック,medical,東京都,M0001,\n" \
        "I0002,架空ケアホーム,care,北海道,,M0002\n"
    assert parse_institutions(text) == [
        InstitutionRow("I0001", "架空クリニック", "medical", "東京都", "M0001", None),
        InstitutionRow("I0002", "架空ケアホーム", "care", "北海道", None, "M0002"),
    ]


def test_bom_crlf_whitespace_and_blank_lines_are_tolerated():
    text = "\ufeff" + MEMBER_HEADER.replace("\n", "\r\n") \
        + " M0001 , 見本 太郎 ,ミホン タロウ, 東京都 , active \r\n\r\n,,,,\r\n"
    assert parse_members(text) == [
        MemberRow("M0001", "見本 太郎", "ミホン タロウ", "東京都", "active"),
    ]


def test_columns_may_come_in_any_order():
    text = "status,member_no,name,name_kana,prefecture\nactive,M0001,見本 太郎,ミホン タロウ,東京都\n"
    assert parse_members(text)[0].member_no == "M0001"


def test_full_width_identifiers_are_normalised():
    text = INSTITUTION_HEADER + "ｉ０００１,架空クリニック,medical,東京都,Ｍ０００１,ｍ０００２\n"
    row = parse_institutions(text)[0]
    assert (row.institution_id, row.founder_member_no, row.manager_member_no) == \
        ("I0001", "M0001", "M0002")


def test_demo_registry_is_valid_and_consistent():
    members = parse_members((DEMO / "members.csv").read_text(encoding="utf-8"))
    institutions = parse_institutions((DEMO / "institutions.csv").read_text(encoding="utf-8"))
    numbers = {m.member_no for m in members}
    assert {m.status for m in members} == {"active", "withdrawn"}
    assert {i.kind for i in institutions} == {"medical", "care"}
    assert any(i.founder_member_no and i.manager_member_no
               and i.founder_member_no != i.manager_member_no for i in institutions)
    for i in institutions:
        assert {i.founder_member_no, i.manager_member_no} - {None} <= numbers


def test_an_institution_may_have_no_member_behind_it():
    """The institution list can be wider than the membership: both numbers blank is a valid row."""
    text = INSTITUTION_HEADER + "I0001,架空クリニック,medical,東京都,,\n"
    assert parse_institutions(text) == [InstitutionRow("I0001", "架空クリニック", "medical", "東京都", None, None)]


# --- normalisation: the rules decide -----------------------------------------------------

def test_the_old_normalisers_are_the_rules():
    assert normalize_member_no is rules.member_no
    assert normalize_name is rules.institution_key


def test_identifiers_are_normalised_by_the_rules():
    row = parse_members(MEMBER_HEADER + "ｍ０００１ ,見本 太郎,ミホン タロウ,東京都,active\n")[0]
    assert row.member_no == rules.member_no("ｍ０００１") == "M0001"


def test_there_are_47_prefectures():
    assert len(set(PREFECTURES)) == len(PREFECTURES) == 47
    assert {"北海道", "東京都", "大阪府", "京都府", "青森県", "沖縄県"} <= set(PREFECTURES)


# --- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "\ufeff", "\n\n"])
def test_empty_file(text):
    assert codes(member_errors(text)) == [(1, "", "missing_header")]


def test_a_members_file_without_members_is_refused_an_institutions_file_may_be_empty():
    assert codes(member_errors(MEMBER_HEADER + "\n,,,,\n")) == [(3, "", "no_members")]
    assert parse_institutions(INSTITUTION_HEADER) == []


def test_header_problems_are_all_reported():
    errors = member_errors(
        "member_no,name,prefecture,status,status,note\nM0001,a,東京都,active,active,x\n"
    )
    assert codes(errors) == [
        (1, "name_kana", "missing_column"),
        (1, "status", "duplicate_column"),
        (1, "note", "unknown_column"),
    ]
    assert all(e.message_ja for e in errors)


@pytest.mark.parametrize("row, field, code", [
    (",見本 太郎,ミホン タロウ,東京都,active", "member_no", "required"),
    ("M0001,,ミホン タロウ,東京都,active", "name", "required"),
    ("M0001,見本 太郎,,東京都,active", "name_kana", "required"),
    ("M0001,見本 太郎,ミホン タロウ,,active", "prefecture", "required"),
    ("M0001,見本 太郎,ミホン タロウ,東京都,", "status", "required"),
    ("M0001,見本 太郎,ミホン タロウ,東京都,resigned", "status", "invalid_status"),
    ("M0001,見本 太郎,ミホン タロウ,東京,active", "prefecture", "invalid_prefecture"),
    ("M0001,見本 太郎,ミホン タロウ,Tokyo,active", "prefecture", "invalid_prefecture"),
    ("M 0001,見本 太郎,ミホン タロウ,東京都,active", "member_no", "invalid_identifier"),
    ("見本001,見本 太郎,ミホン タロウ,東京都,active", "member_no", "invalid_identifier"),
    ("M0001,見本 太郎,東京都,active", "", "wrong_field_count"),
    ("M0001,見本 太郎,ミホン タロウ,東京都,active,x", "", "wrong_field_count"),
])
def test_member_row_errors(row, field, code):
    errors = member_errors(MEMBER_HEADER + row + "\n")
    assert codes(errors) == [(2, field, code)]
    assert errors[0].message_ja


def test_prefecture_error_suggests_official_name():
    errors = member_errors(MEMBER_HEADER + "M0001,見本 太郎,ミホン タロウ,東京,active\n")
    assert "東京都" in errors[0].message_ja


@pytest.mark.parametrize("row, field, code", [
    (",架空クリニック,medical,東京都,M0001,", "institution_id", "required"),
    ("I0001,,medical,東京都,M0001,", "name", "required"),
    ("I0001,架空クリニック,,東京都,M0001,", "kind", "required"),
    ("I0001,架空クリニック,hospital,東京都,M0001,", "kind", "invalid_kind"),
    ("I0001,架空クリニック,medical,大阪,M0001,", "prefecture", "invalid_prefecture"),
    ("I0001,架空クリニック,medical,東京都,M-0001?,", "founder_member_no", "invalid_identifier"),
    ("I0001,架空クリニック,medical,東京都,,M 2", "manager_member_no", "invalid_identifier"),
])
def test_institution_row_errors(row, field, code):
    errors = institution_errors(INSTITUTION_HEADER + row + "\n")
    assert codes(errors) == [(2, field, code)]
    assert errors[0].message_ja


def test_duplicate_member_no_after_normalisation():
    text = MEMBER_HEADER + "M0001,見本 太郎,ミホン タロウ,東京都,active\n" \
        "M0002,架空 花子,カクウ ハナコ,大阪府,active\n" \
        "Ｍ０００１,見本 次郎,ミホン ジロウ,東京都,active\n"
    errors = member_errors(text)
    assert codes(errors) == [(4, "member_no", "duplicate_key")]
    assert "2 行目" in errors[0].message_ja


def test_duplicate_institution_id_reported_even_with_other_errors_in_row():
    text = INSTITUTION_HEADER + "I0001,架空クリニック,medical,東京都,M0001,\n" \
        "I0001,架空ケアホーム,nursing,東京都,M0001,\n"
    assert codes(institution_errors(text)) == [
        (3, "kind", "invalid_kind"), (3, "institution_id", "duplicate_key"),
    ]


def test_all_errors_reported_together_and_nothing_returned():
    text = MEMBER_HEADER + "M0001,見本 太郎,ミホン タロウ,東京都,active\n" \
        "M0002,,カクウ ハナコ,大坂府,gone\n" \
        "M0003,仮名 一郎,カメイ イチロウ,大阪府,active\n" \
        "M0001,見本 太郎,ミホン タロウ,東京都,active\n" \
        "M0004,試験 次郎\n"
    with pytest.raises(RegistryFileError) as excinfo:
        parse_members(text)
    assert codes(excinfo.value.errors) == [
        (3, "name", "required"),
        (3, "prefecture", "invalid_prefecture"),
        (3, "status", "invalid_status"),
        (5, "member_no", "duplicate_key"),
        (6, "", "wrong_field_count"),
    ]
    assert isinstance(excinfo.value, ValueError)
    assert "5 件" in str(excinfo.value)


def test_line_numbers_count_quoted_multiline_cells():
    text = MEMBER_HEADER + 'M0001,"見本\n太郎",ミホン タロウ,東京都,active\n' \
        "M0002,架空 花子,カクウ ハナコ,大阪府,bad\n"
    assert codes(member_errors(text)) == [(4, "status", "invalid_status")]


def test_a_nul_character_is_refused_with_its_column():
    assert codes(member_errors(MEMBER_HEADER + "M0001,見本\x00太郎,ミホン タロウ,東京都,active\n")) == [
        (2, "name", "nul_character")]


# --- streaming -------------------------------------------------------------------------------

def test_a_file_yields_its_rows_until_the_first_problem_then_only_collects_problems():
    rows = [f"M{i:04d},見本 太郎,ミホン タロウ,東京都,active\n" for i in range(1, 6)]
    rows[2] = "M0003,見本 太郎,ミホン タロウ,東京都,gone\n"
    file = read_members(io.StringIO(MEMBER_HEADER + "".join(rows) + "M0001,x,x,東京都,active\n", newline=""))
    assert [row.member_no for row in file] == ["M0001", "M0002"]
    assert codes(file.errors) == [(4, "status", "invalid_status"), (7, "member_no", "duplicate_key")]
    assert not file.cut_off


def test_problems_stop_at_the_cap():
    text = MEMBER_HEADER + "".join(f"M{i:04d},,ミホン タロウ,東京都,active\n" for i in range(MAX_ERRORS + 20))
    file = read_members(io.StringIO(text, newline=""))
    assert list(file) == []
    assert len(file.errors) == MAX_ERRORS and file.cut_off
    assert file.errors[-1].line == MAX_ERRORS + 1


# --- encodings ---------------------------------------------------------------------------------

def passes(data: bytes, size: int = 7):
    """`read` for detect_encoding: chunks of about `size` bytes, each ending at a line break."""
    lines = data.splitlines(keepends=True)
    return lambda: iter([b"".join(lines[i:i + size]) for i in range(0, len(lines), size)] or [b""])


SAMPLE = MEMBER_HEADER + "M0001,髙橋 﨑子,タカハシ サキコ,東京都,active\n" * 20


@pytest.mark.parametrize("text, written_as, detected", [
    (SAMPLE, "utf-8", "utf-8"),
    (SAMPLE, "utf-8-sig", "utf-8-sig"),
    (SAMPLE, "cp932", "cp932"),  # what Excel writes as "CSV" on a Japanese Windows
    (MEMBER_HEADER, "ascii", "utf-8"),
    ("", "ascii", "utf-8"),
])
def test_the_encoding_is_decided_from_the_bytes(text, written_as, detected):
    data = text.encode(written_as)
    assert detect_encoding(passes(data)) == detected
    assert data.decode(detected) == text


def undecodable(data: bytes) -> UndecodableFile:
    with pytest.raises(UndecodableFile) as excinfo:
        detect_encoding(passes(data))
    return excinfo.value


def test_neither_utf8_nor_cp932_is_refused_with_line_and_byte():
    data = SAMPLE.encode("cp932")
    bad = data.index(b"\n", data.index(b"\n", len(MEMBER_HEADER) + 1) + 1) + 1 + 6  # line 4, 7th byte
    refused = undecodable(data[:bad] + b"\x82\x20" + data[bad:])
    assert (refused.error.line, refused.error.code, refused.byte) == (4, "undecodable", bad + 1)
    assert "4 行目" in refused.error.message_ja and f"{bad + 1} バイト目" in refused.error.message_ja


def test_a_bom_means_utf8_even_when_the_rest_would_read_as_cp932():
    refused = undecodable(b"\xef\xbb\xbf" + SAMPLE.encode("cp932"))
    assert (refused.error.line, refused.error.code) == (2, "undecodable")
    assert "UTF-8（BOM 付き）" in refused.error.message_ja


def test_utf16_is_refused_by_name():
    assert undecodable(SAMPLE.encode("utf-16")).error.code == "utf16_not_supported"
