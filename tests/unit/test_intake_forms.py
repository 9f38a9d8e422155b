import pytest

from services.intake.forms import Rejected, parse


def valid(**changes) -> dict:
    payload = {
        "consultant": {"name": "見本 花子", "name_kana": "みほん はなこ", "role": "member", "member_no": "M0001"},
        "institution": {"name": "架空クリニック", "prefecture": "東京都", "manager_member_no": None},
        "contact": {"method": "email", "phone": None, "email": "hanako@example.com"},
        "category": "online",
        "summary": "口コミサイトに事実と異なる投稿をされました。",
        "urls": ["https://maps.example.com/review/1"],
        "consent": True,
    }
    payload.update(changes)
    return payload


def problems(payload) -> dict[str, str]:
    with pytest.raises(Rejected) as caught:
        parse(payload)
    for error in caught.value.errors:
        assert error["message"] and not error["message"].isascii(), error  # Japanese for people
    return {e["field"]: e["code"] for e in caught.value.errors}


def test_a_complete_submission_is_accepted_and_normalised():
    form = parse(valid(consultant={"name": "見本 花子", "name_kana": "ミホン ハナコ", "role": "member", "member_no": "ｍ０００１"}))
    assert form.consultant.member_no == "M0001"
    assert form.urls == ["https://maps.example.com/review/1"]


def test_every_missing_field_is_named():
    assert problems({}) == {
        "consultant": "missing", "contact": "missing", "category": "missing", "summary": "missing", "consent": "missing",
    }


def test_consent_must_be_given():
    assert problems(valid(consent=False)) == {"consent": "consent_required"}


def consultant(name_kana: str = "みほん はなこ", member_no: str | None = "M0001") -> dict:
    return {"name": "見本 花子", "name_kana": name_kana, "role": "member", "member_no": member_no}


@pytest.mark.parametrize("typed", [
    "みほん はなこ",  # hiragana
    "ミホン ハナコ",  # full-width katakana
    "ﾐﾎﾝ ﾊﾅｺ",  # half-width katakana
    "ﾔﾏﾀﾞ ﾊﾟｰｺ",  # half-width with voicing marks and long vowel
    "サトー ケーコ", "サトｰ ケｰコ", "サト－ ケ－コ", "サト‐ ケ‐コ", "さと～ けいこ", "サト〜 ケ-コ",  # long vowels
    "いすゞ ゆゝこ", "イスヾ ユヽコ",  # iteration marks
    "ウ゛ィクトリア",  # an old-style stand-alone voicing mark
    "ジョン・スミス",  # a foreign name's middle dot
    "みほん\u3000はなこ", "みほん\u00a0はなこ", "みほん\tはなこ", "みほん  はなこ", "みほんはなこ",  # any space, or none
])
def test_a_reading_in_any_kana_width_is_accepted_as_typed(typed):
    assert parse(valid(consultant=consultant(typed))).consultant.name_kana == typed


def test_a_reading_is_kept_as_typed_only_trimmed():
    form = parse(valid(consultant=consultant("\u3000 ﾐﾎﾝ\u3000ﾊﾅｺ\t\u00a0")))
    assert form.consultant.name_kana == "ﾐﾎﾝ\u3000ﾊﾅｺ"


@pytest.mark.parametrize("typed", [
    "Hanako", "ｈａｎａｋｏ", "見本 花子", "みほん 花子", "みほん はなこ2", "みほん はなこ２",
    "みほん！", "みほん@はなこ", "★はなこ", "ーはなこ", "ー", "ゝ", "\u3000",
])
def test_kanji_latin_digits_and_symbols_are_not_a_reading(typed):
    with pytest.raises(Rejected) as caught:
        parse(valid(consultant=consultant(typed)))
    errors = {e["field"]: (e["code"], e["message"]) for e in caught.value.errors}
    if typed.strip():
        assert errors == {"consultant.name_kana": ("kana_only", "ふりがなはひらがなまたはカタカナで入力してください")}
    else:
        assert errors["consultant.name_kana"][0] == "string_too_short"


@pytest.mark.parametrize("typed, number", [
    ("M0001", "M0001"), ("Ｍ０００１", "M0001"), ("ｍ０００１", "M0001"), ("０１２３４５", "012345"),
    (" Ｍ－０００１\u3000", "M-0001"), ("M‐0001", "M-0001"), ("Mー0001", "M-0001"), ("M 0001", "M0001"),
])
def test_member_numbers_are_accepted_in_any_width_and_stored_half_width(typed, number):
    form = parse(valid(consultant=consultant(member_no=typed),
                       institution={"name": "架空クリニック", "manager_member_no": typed}))
    assert (form.consultant.member_no, form.institution.manager_member_no) == (number, number)


def test_a_member_number_holds_only_letters_digits_and_hyphens():
    for typed in ("会員", "M#1", "わからない"):
        codes = problems(valid(consultant=consultant(member_no=typed),
                               institution={"name": "架空クリニック", "manager_member_no": typed}))
        assert codes == {"consultant.member_no": "member_no_format",
                         "institution.manager_member_no": "member_no_format"}
    blank = parse(valid(institution={"name": "架空クリニック", "manager_member_no": "\u3000"}))
    assert blank.institution.manager_member_no is None


def test_contact_must_reach_the_consultant():
    assert problems(valid(contact={"method": "phone", "email": "a@example.com"})) == {"contact.phone": "phone_required"}
    assert problems(valid(contact={"method": "email", "phone": "0312345678"})) == {"contact.email": "email_required"}
    assert problems(valid(contact={"method": "phone", "phone": "12345"})) == {"contact.phone": "phone_format"}
    assert parse(valid(contact={"method": "phone", "phone": "03-1234-5678"})).contact.phone == "0312345678"


def test_online_posts_need_their_urls():
    assert problems(valid(urls=[])) == {"urls": "urls_required"}
    assert problems(valid(urls=["javascript:alert(1)"])) == {"urls": "url_format"}
    assert parse(valid(category="in_person", urls=[])).urls == []


def test_staff_name_their_institution_and_members_their_number():
    staff = valid(consultant={"name": "a", "name_kana": "あ", "role": "medical_staff"}, institution={})
    assert problems(staff) == {"institution.name": "institution_required"}
    member = valid(consultant={"name": "a", "name_kana": "あ", "role": "member"})
    assert problems(member) == {"consultant.member_no": "member_no_required"}


def test_unknown_prefecture_and_role_are_refused():
    codes = problems(valid(institution={"name": "x", "prefecture": "東京"},
                           consultant={"name": "a", "name_kana": "あ", "role": "patient", "member_no": "M1"}))
    assert codes == {"institution.prefecture": "unknown_prefecture", "consultant.role": "literal_error"}


def test_too_long_summary_is_refused_with_its_limit():
    with pytest.raises(Rejected) as caught:
        parse(valid(summary="あ" * 4001))
    assert caught.value.errors[0]["code"] == "string_too_long"
    assert "4000" in caught.value.errors[0]["message"]
