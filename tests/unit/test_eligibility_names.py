"""How eligibility compares names: examples, the variant data, and properties over any text."""
import tomllib
from pathlib import Path

import jaconv
import pytest
from hypothesis import example, given, settings, strategies as st

import services.eligibility
from services.eligibility.rules import (
    Applicant, Institution, Member, Outcome, RegistryView, decide, institution_key, kana, member_no,
    person_name,
)

DATA = tomllib.loads((Path(services.eligibility.__file__).parent / "name_variants.toml").read_text("utf-8"))
GROUPS = [(g["canonical"], *g["variants"]) for g in DATA["variants"]]


# --- examples ---------------------------------------------------------------------------------

@pytest.mark.parametrize("written, key", [
    ("ｍ０００１ ", "M0001"),
    ("\u3000m0001\t", "M0001"),
    ("M0001", "M0001"),
])
def test_member_no(written, key):
    assert member_no(written) == key


@pytest.mark.parametrize("written, key", [
    ("髙田\u3000太郎", "高田太郎"),  # variant kanji, ideographic space
    ("山﨑 花子", "山崎花子"),
    ("渡邉\u00a0一郎", "渡辺一郎"),  # no-break space
    ("渡邉\U000E0102", "渡辺"),  # 邉 with a variation selector (one of its registered glyphs)
    ("齋藤\t", "斎藤"),
    ("齊藤", "斎藤"),
    ("斉藤", "斎藤"),
    ("佐々木", "佐佐木"),  # the repeat mark compares as what it repeats
    ("ﾀｶﾀﾞ ﾀﾛｳ", "タカダタロウ"),  # half-width katakana, its voiced mark joined
    ("たかだ たろう", "タカダタロウ"),
    ("ＳＭＩＴＨ　Ｊｏｈｎ", "smithjohn"),  # full-width letters, any case
    ("ジョン・スミス", "ジョンスミス"),  # the middle dot separates like a space
    ("ジョン＝スミス", "ジョンスミス"),
    ("ル−シ―", "ルーシー"),  # minus sign, horizontal bar
    ("ル～シ〜", "ルーシー"),  # wave dashes
    ("ルｰｼｰｰ", "ルーシー"),  # half-width mark, doubled mark
    ("タロ一", "タロー"),  # the kanji 一 typed for ー after katakana
    ("一郎", "一郎"),  # ... but not in a kanji name
    ("いすゞ", "イスズ"),
    ("桜ヶ丘", "桜ケ丘"),
    ("カ゛ン", "ガン"),  # a spacing voiced mark
    ("ゼロ\u200bワン", "ゼロワン"),  # zero-width space
])
def test_person_name(written, key):
    assert person_name(written) == key


@pytest.mark.parametrize("written, key", [
    ("やまざき　はなこ", "ヤマザキハナコ"),
    ("ﾔﾏｻﾞｷ ﾊﾅｺ", "ヤマザキハナコ"),
    ("キャノン", "キャノン"),  # small kana stay small ...
    ("キヤノン", "キヤノン"),  # ... so these two readings differ
    ("ヴァイオリン", "ヴァイオリン"),  # ヴ is not ブ
    ("ゔぁいおりん", "ヴァイオリン"),
])
def test_kana(written, key):
    assert kana(written) == key


@pytest.mark.parametrize("written, key", [
    ("医療法人社団 桜会 さくらクリニック", "桜会サクラクリニック"),
    ("（医社）桜会さくらクリニック", "桜会サクラクリニック"),
    ("(医社)桜会 さくらクリニック", "桜会サクラクリニック"),
    ("桜会さくらクリニック", "桜会サクラクリニック"),
    ("株式会社ケアライフ", "ケアライフ"),
    ("ケアライフ株式会社", "ケアライフ"),
    ("ケアライフ㈱", "ケアライフ"),
    ("（株）ケアライフ", "ケアライフ"),
    ("ｹｱﾗｲﾌ(株)", "ケアライフ"),
    ("㈲ひかり", "ヒカリ"),
    ("㈳やまびこ会", "ヤマビコ会"),
    ("㈶みどり会", "ミドリ会"),
    ("社会福祉法人 ひまわり会 特別養護老人ホームあおぞら", "ヒマワリ会特別養護老人ホームアオゾラ"),
    ("（福）ひまわり会", "ヒマワリ会"),
    ("(社福)ひまわり会", "ヒマワリ会"),
    ("一般社団法人 つばさ", "ツバサ"),
    ("公益財団法人つばさ", "ツバサ"),
    ("社会医療法人 青葉会", "青葉会"),
    ("特定医療法人青葉会", "青葉会"),
    ("合同会社あおば", "アオバ"),
    ("有限会社あおば", "アオバ"),
    ("（医）青葉会 （医財）", "青葉会"),  # at both ends, more than one
    ("青葉医療法人会", "青葉医療法人会"),  # inside a name: kept
    ("医療法人", "医療法人"),  # nothing but a legal form: never an empty key
    ("株式会社（株）", "株式会社(株)"),
    ("", ""),
])
def test_institution_key(written, key):
    assert institution_key(written) == key


# --- the variant data ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant, common", [
    ("髙", "高"), ("﨑", "崎"), ("齋", "斎"), ("齊", "斎"), ("邊", "辺"), ("邉", "辺"), ("澤", "沢"),
    ("廣", "広"), ("濱", "浜"), ("國", "国"), ("櫻", "桜"), ("德", "徳"), ("靜", "静"), ("嶋", "島"),
    ("瀨", "瀬"), ("槇", "槙"), ("篭", "籠"),
])
def test_the_variants_the_desk_promises(variant, common):
    assert person_name(variant) == person_name(common)


def test_every_variant_group_says_where_it_comes_from():
    for group in DATA["variants"]:
        assert group["source"].strip(), group
        assert group["canonical"] not in group["variants"]
    characters = [c for group in GROUPS for c in group]
    assert len(characters) == len(set(characters)), "a character in two groups"


def test_distinct_characters_stay_distinct():
    assert person_name("埼") != person_name("崎")  # deliberately not merged: 埼玉
    assert person_name("高田") != person_name("髙木")


# --- properties -------------------------------------------------------------------------------

KANJI = sorted({c for group in GROUPS for c in group} | set("田中山本太郎花子佐藤一井口永原池戸"))
HIRAGANA = "あいうえおかきくけこがぎぐげごさしすせそざじずぜぞたちつてとだでどなにぬねのはひふへほばびぶべぼぱぴぷぺぽ" \
           "まみむめもやゆよらりるれろわんぁぃぅぇぉっゃゅょー"
LATIN = "AbcXyz09"
SPACES = [" ", "\u3000", "\t", "\u00a0", "\u2002", "\u200b"]
DASHES = ["ー", "ｰ", "−", "‐", "‑", "–", "—", "―", "～", "〜", "-"]
LEGAL = ["医療法人社団 ", "（医社）", "(医社)", "医療法人", "（医）", "株式会社", "㈱", "(株)", "社会福祉法人", "（福）"]

PIECES = list(HIRAGANA + "".join(KANJI) + LATIN + "アカガﾞﾟゝゞヽヾ々ヶヵ・＝(（）)") + SPACES + DASHES + LEGAL
JAPANESE_TEXT = st.lists(st.sampled_from(PIECES), max_size=24).map("".join)


@settings(max_examples=500)
@given(st.one_of(st.text(), JAPANESE_TEXT))
@example("ῒ")  # upper() leaves it decomposed
@example("ヵ゛")  # a small kana with a spacing voiced mark
@example("カ一株式会社")  # stripping the legal form leaves 一 at the end, after katakana
@example("´ m0001")
def test_every_key_is_idempotent(text):
    for key in (member_no, person_name, kana, institution_key):
        once = key(text)
        assert key(once) == once, key.__name__


@st.composite
def registered_names(draw):
    """A name as a registry holds it: kanji (variants included), hiragana, a few Latin letters."""
    return draw(st.text(st.sampled_from(KANJI + list(HIRAGANA) + list(LATIN)), min_size=1, max_size=12))


@st.composite
def rewritten(draw, name):
    """The same name as someone else types it: another variant of each kanji, katakana or
    half-width katakana for the kana, full-width letters, any dash for ー, spaces anywhere."""
    out = []
    for c in name:
        group = next((g for g in GROUPS if c in g), None)
        if group:
            c = draw(st.sampled_from(group))
        elif c == "ー":
            c = draw(st.sampled_from(DASHES))
        elif c in HIRAGANA:
            c = draw(st.sampled_from([c, jaconv.hira2kata(c), jaconv.z2h(jaconv.hira2kata(c), kana=True)]))
        elif c in LATIN:
            c = draw(st.sampled_from([c, c.swapcase(), jaconv.h2z(c, ascii=True, digit=True)]))
        out.append(c + draw(st.sampled_from(["", "", *SPACES])))
    return draw(st.sampled_from(["", *SPACES])) + "".join(out)


@settings(max_examples=300)
@given(st.data(), registered_names(), registered_names())
def test_rewrites_of_a_registered_name_never_change_a_confirmed_verdict(data, name, reading):
    row = Member("M0001", name, reading, "active", "東京都")
    as_registered = Applicant("member", name, reading, "M0001", None, None, None)
    assert decide(as_registered, RegistryView(member=row)).outcome is Outcome.CONFIRMED
    by_name = Applicant("member", data.draw(rewritten(name)), "", "ｍ０００１", None, None, None)
    by_reading = Applicant("member", "", data.draw(rewritten(reading)), " M0001", None, None, None)
    for applicant in (by_name, by_reading):
        assert decide(applicant, RegistryView(member=row)).outcome is Outcome.CONFIRMED, applicant


LEGAL_OR_NOT = st.sampled_from(["", *LEGAL])


@settings(max_examples=300)
@given(st.data(), registered_names(), LEGAL_OR_NOT, LEGAL_OR_NOT)
def test_rewrites_of_an_institution_name_never_change_a_confirmed_verdict(data, name, before, after):
    clinic = Institution("I001", before + name + after, "medical", "東京都", "M0001", None)
    founder = {"M0001": Member("M0001", "髙田 太郎", "タカダ タロウ", "active", "東京都")}
    written = data.draw(LEGAL_OR_NOT) + data.draw(rewritten(name)) + data.draw(LEGAL_OR_NOT)
    applicant = Applicant("medical_staff", "山田 花子", "やまだ はなこ", None, written, "東京都", None)
    registry = RegistryView(institutions=[clinic], members_behind=founder)
    assert decide(applicant, registry).outcome is Outcome.CONFIRMED, (clinic.name, written)
