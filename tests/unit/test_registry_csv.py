from pathlib import Path

import pytest

from services.eligibility.registry_csv import (
    PREFECTURES, InstitutionRow, MemberRow, RegistryFileError,
    normalize_member_no, normalize_name, parse_institutions, parse_members,
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


# --- normalisation -------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["M0001", "Ｍ０００１", " m0001 ", "ｍ０００１\u3000"])
def test_normalize_member_no(raw):
    assert normalize_member_no(raw) == "M0001"


@pytest.mark.parametrize("raw", ["架空クリニック", " 架空 クリニック ", "架空\u3000クリニック", "架空ｸﾘﾆｯｸ"])
def test_normalize_name(raw):
    assert normalize_name(raw) == "架空クリニック"


def test_there_are_47_prefectures():
    assert len(set(PREFECTURES)) == len(PREFECTURES) == 47
    assert {"北海道", "東京都", "大阪府", "京都府", "青森県", "沖縄県"} <= set(PREFECTURES)


# --- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "\ufeff", "\n\n"])
def test_empty_file(text):
    assert codes(member_errors(text)) == [(1, "", "missing_header")]


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
    ("I0001,架空クリニック,medical,東京都,,", "founder_member_no", "founder_or_manager_required"),
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
