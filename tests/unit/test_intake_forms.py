"""The form model's rules (the web form, the JSON API and the phone channel share them): every
refusal has a field, a machine code and a Japanese message, and all of them come in one round."""
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
    "みほん\u3000はなこ", "みほん\u00a0はなこ", "みほん  はなこ", "みほんはなこ",  # any space, or none
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


def staff(role: str = "medical_staff", **institution) -> dict:
    return valid(consultant={"name": "見本 花子", "name_kana": "みほん はなこ", "role": role},
                 institution=institution)


def with_consultant(**changes) -> dict:
    return valid(consultant={**consultant(), **changes})


def with_contact(**contact) -> dict:
    return valid(contact=contact)


class Upload:
    """What a multipart file part is in a parsed form: not text."""
    filename = "evil.txt"


# every rule, one mistake at a time: the payload and the one {field: code} it gets
RULES = [
    ("role missing", valid(consultant={"name": "見本 花子", "name_kana": "みほん はなこ", "member_no": "M0001"}),
     {"consultant.role": "missing"}),
    ("role unknown", with_consultant(role="patient"), {"consultant.role": "literal_error"}),
    ("name blank", with_consultant(name="\u3000"), {"consultant.name": "string_too_short"}),
    ("kana in kanji", with_consultant(name_kana="見本 花子"), {"consultant.name_kana": "kana_only"}),
    ("member without number", with_consultant(member_no=None), {"consultant.member_no": "member_no_required"}),
    ("member number in kanji", with_consultant(member_no="会員"), {"consultant.member_no": "member_no_format"}),
    ("staff without institution", staff(prefecture="東京都"), {"institution.name": "institution_required"}),
    ("staff without prefecture", staff("care_staff", name="架空ケアホーム"),
     {"institution.prefecture": "prefecture_required"}),
    ("staff, unknown prefecture", staff(name="架空クリニック", prefecture="東京"),
     {"institution.prefecture": "unknown_prefecture"}),
    ("staff, manager number in kana", staff(name="架空クリニック", prefecture="東京都", manager_member_no="わからない"),
     {"institution.manager_member_no": "member_no_format"}),
    ("contact method missing", with_contact(phone="0312345678"), {"contact.method": "missing"}),
    ("phone without number", with_contact(method="phone", email="a@example.com"), {"contact.phone": "phone_required"}),
    ("phone number too short", with_contact(method="phone", phone="12345"), {"contact.phone": "phone_format"}),
    ("e-mail without address", with_contact(method="email", phone="0312345678"), {"contact.email": "email_required"}),
    ("e-mail address malformed", with_contact(method="email", email="hanako@"), {"contact.email": "value_error"}),
    ("preferred time unknown", valid(preferred_time="evening"), {"preferred_time": "literal_error"}),
    ("category missing", {k: v for k, v in valid().items() if k != "category"}, {"category": "missing"}),
    ("summary too long", valid(summary="あ" * 4001), {"summary": "string_too_long"}),
    ("NUL in the name", with_consultant(name="見本\x00花子"), {"consultant.name": "control_character"}),
    ("tab inside the reading", with_consultant(name_kana="みほん\tはなこ"), {"consultant.name_kana": "control_character"}),
    ("NUL in the summary", valid(summary="投稿\x00されました"), {"summary": "control_character"}),
    ("escape in the summary", valid(summary="\x1b[31m投稿"), {"summary": "control_character"}),
    ("C1 control in the institution", staff(name="架空\x85クリニック", prefecture="東京都"),
     {"institution.name": "control_character"}),
    ("lone surrogate in the summary", valid(summary="投稿\ud800されました"), {"summary": "control_character"}),
    ("lone surrogate in the e-mail", with_contact(method="email", email="a\udc00@example.com"),
     {"contact.email": "control_character"}),
    ("NUL in a URL", valid(urls=["https://x.com/a\x00"]), {"urls": "control_character"}),
    ("online without URLs", valid(category="online", urls=[]), {"urls": "urls_required"}),
    ("both without URLs", valid(category="both", urls=["  "]), {"urls": "urls_required"}),
    ("URL of another scheme", valid(urls=["javascript:alert(1)"]), {"urls": "url_scheme"}),
    ("URL of search results", valid(urls=["https://www.google.com/search?q=clinic"]), {"urls": "url_search_results"}),
    ("a file as the name", with_consultant(name=Upload()), {"consultant.name": "not_text"}),
    ("a file as the role", with_consultant(role=Upload()), {"consultant.role": "not_text"}),
    ("a file as the summary", valid(summary=Upload()), {"summary": "not_text"}),
    ("a file as a URL", valid(urls=[Upload()]), {"urls": "not_text"}),
    ("a file as the consent", valid(consent=Upload()), {"consent": "not_text"}),
    ("a file as urgent", valid(urgent=Upload()), {"urgent": "not_text"}),
    ("a number as the name (JSON)", with_consultant(name=12), {"consultant.name": "not_text"}),
    ("consent not given", valid(consent=False), {"consent": "consent_required"}),
    ("consent missing", {k: v for k, v in valid().items() if k != "consent"}, {"consent": "missing"}),
]


@pytest.mark.parametrize("payload, expected", [rule[1:] for rule in RULES], ids=[rule[0] for rule in RULES])
def test_each_rule_refuses_with_its_field_and_code(payload, expected):
    assert problems(payload) == expected


@pytest.mark.parametrize("payload", [
    valid(summary="一行目\n二行目\r\n三行目\t（表）"),  # multi-line text keeps its breaks and tabs
    valid(category="in_person", urls=[]),
    staff(name="架空クリニック", prefecture="東京都"),  # the founder's number only where known
    with_contact(method="phone", phone="03-1234-5678"),
])
def test_what_a_person_may_write_is_accepted(payload):
    parse(payload)


def test_preferred_time_and_urgent_have_defaults_and_are_kept():
    form = parse(valid())
    assert (form.preferred_time, form.urgent) == ("any", False)
    form = parse(valid(preferred_time="morning", urgent=True))
    assert (form.preferred_time, form.urgent) == ("morning", True)
    assert parse(valid(summary="一行目\r\n二行目")).summary == "一行目\r\n二行目"


def test_the_summary_limit_is_4000_characters_and_says_so():
    assert parse(valid(summary="あ" * 4000)).summary == "あ" * 4000
    with pytest.raises(Rejected) as caught:
        parse(valid(summary="あ" * 4001))
    assert "4,000文字以内" in caught.value.errors[0]["message"]


def test_contact_numbers_are_stored_as_digits():
    assert parse(with_contact(method="phone", phone="０３－１２３４－５６７８")).contact.phone == "0312345678"


def test_every_mistake_comes_in_one_round_with_the_rules_across_fields():
    """Field errors and cross-field rules together: nothing waits for a second submission."""
    payload = valid(
        consultant={"name": "見本\x00花子", "name_kana": "Hanako", "role": "member"},  # and no member number
        contact={"method": "phone"},  # and no phone number
        category="online", urls=[],  # and no URL
        summary="あ" * 4001, consent=False,
    )
    assert problems(payload) == {
        "consultant.name": "control_character", "consultant.name_kana": "kana_only",
        "consultant.member_no": "member_no_required", "contact.phone": "phone_required",
        "urls": "urls_required", "summary": "string_too_long", "consent": "consent_required",
    }


def test_a_rule_across_fields_is_skipped_when_a_field_it_reads_is_wrong():
    # a role that is no role says nothing about a member number; a malformed number is not a missing one
    assert problems(with_consultant(role="patient", member_no=None)) == {"consultant.role": "literal_error"}
    assert problems(valid(consent=False, contact={"method": "phone", "phone": "12"})) == {
        "consent": "consent_required", "contact.phone": "phone_format"}


def test_every_refused_url_is_reported_with_its_line():
    with pytest.raises(Rejected) as caught:
        parse(valid(urls=["javascript:alert(1)", "https://x.com/a/status/1", "https://www.google.com/search?q=a",
                          "https://x.com/b\x00"]))
    assert [(e["field"], e["code"]) for e in caught.value.errors] == [
        ("urls", "url_scheme"), ("urls", "url_search_results"), ("urls", "control_character")]
    assert [e["message"][:8] for e in caught.value.errors] == ["1件目のURL：", "3件目のURL：", "4件目のURL："]


def test_urls_are_normalised_and_duplicates_dropped():
    form = parse(valid(urls=["ｈｔｔｐｓ：／／x.com/a/status/1?s=20", "https://x.com/a/status/1", ""]))
    assert form.urls == ["https://x.com/a/status/1"]
