"""The eligibility rules: who is confirmed, who is refused, who goes to a reviewer with whom."""
import pytest

from services.eligibility.rules import (
    Applicant, Institution, Member, Outcome, RegistryView, Verdict, decide,
)

CONFIRMED, REJECTED, REVIEW = "confirmed", "rejected", "review_requested"


def member(number, name, reading, status="active", prefecture="東京都"):
    return Member(number, name, reading, status, prefecture)


def as_member(number, name, reading="ベツノヨミ"):
    """A member applicant; by default a reading that matches nobody, so the name must match."""
    return Applicant("member", name, reading, number, None, None, None)


def as_staff(institution, prefecture="東京都", manager=None, role="medical_staff"):
    return Applicant(role, "山田 花子", "やまだ はなこ", None, institution, prefecture, manager)


def view(*rows, named=(), nearby=(), behind=()):
    """The registry rows verdicting fetched: a member row, or institutions and who is behind them."""
    members = [r for r in rows if isinstance(r, Member)]
    return RegistryView(member=members[0] if members else None, members_named=named,
                        institutions=[r for r in rows if isinstance(r, Institution)], nearby=nearby,
                        members_behind={m.member_no: m for m in behind})


def expect(outcome, reason, basis=None, institution=None, *candidates):
    return (outcome, reason, basis, institution, list(candidates))


TAKADA = member("M0001", "髙田 太郎", "タカダ タロウ")
YAMAZAKI = member("M0002", "山﨑 花子", "ヤマザキ ハナコ")
SAITO_W = member("M0003", "齋藤 一郎", "サイトウ イチロウ", status="withdrawn")
LUCY = member("M0004", "佐藤 ルーシー", "サトウ ルーシー")
KUDO = member("M0005", "工藤 静香", "クドウ シズカ", prefecture="大阪府")
NAKAJIMA = member("M0006", "中嶋 修", "ナカジマ オサム", prefecture="大阪府")
MORI = member("M0007", "森 一", "モリ ハジメ", prefecture="大阪府")
TAKADA_2 = member("M0101", "高田 太郎", "タカダ タロウ")  # a namesake
TAKADA_3 = member("M0102", "髙田 大郎", "タカダ タロウ", status="withdrawn")  # same reading

CLINIC = Institution("I001", "医療法人社団 桜会 さくらクリニック", "medical", "東京都", "M0001", None)
CARE_HOME = Institution("I002", "株式会社ケアライフ", "care", "東京都", None, "M0002")
GROUP_HOME = Institution("I003", "グループホーム ひだまり", "care", "大阪府", "M0005", None)
CHUO_A = Institution("I010", "中央病院", "medical", "大阪府", "M0005", None)
CHUO_B = Institution("I011", "医療法人 中央病院", "medical", "大阪府", "M0006", "M0007")
MIDORI_KANAGAWA = Institution("I030", "みどり診療所", "medical", "神奈川県", "M0001", None)
MIDORI_HOKKAIDO = Institution("I031", "医療法人みどり診療所", "medical", "北海道", "M0001", None)
MIDORI_CARE = Institution("I032", "みどり診療所", "care", "千葉県", "M0001", None)  # other kind
MIDORI_NAIKA = Institution("I033", "みどり内科診療所", "medical", "東京都", "M0001", None)
MIDORI_SAITAMA = Institution("I034", "みどりクリニック", "medical", "埼玉県", "M0001", None)
MIDORI_DENTAL = Institution("I035", "みどり歯科", "medical", "東京都", "M0001", None)
HIKARI_BLANK = Institution("I040", "ひかり医院", "medical", "東京都", None, None)
HIKARI_GONE = Institution("I041", "ひかり医院", "medical", "京都府", "M0404", None)  # founder not a member
HIKARI_W = Institution("I042", "ひかり医院", "medical", "奈良県", "M0003", None)  # founder withdrawn
HIKARI_W_MGR = Institution("I043", "ひかり医院", "medical", "滋賀県", "M0003", "M0002")

CASES = [
    # members: each variant group once, written one way in the registry and the other on the form
    pytest.param(as_member("M0001", "高田太郎"), view(TAKADA), expect(CONFIRMED, "active_member", "M0001"),
                 id="髙/高"),
    pytest.param(as_member("M0002", "山崎 花子"), view(YAMAZAKI), expect(CONFIRMED, "active_member", "M0002"),
                 id="﨑/崎"),
    *[pytest.param(as_member("M0200", given), view(member("M0200", registered, "ヨミ")),
                   expect(CONFIRMED, "active_member", "M0200"), id=f"{registered}/{given}")
      for registered, given in [
          ("齋藤 一郎", "斎藤 一郎"), ("齊藤 一郎", "斉藤 一郎"), ("渡邉 誠", "渡辺 誠"), ("渡邊 誠", "渡邉 誠"),
          ("澤田 恵", "沢田 恵"), ("廣瀬 恵", "広瀬 恵"), ("濱口 恵", "浜口 恵"), ("國分 恵", "国分 恵"),
          ("櫻井 恵", "桜井 恵"), ("德永 恵", "徳永 恵"), ("工藤 靜香", "工藤 静香"), ("中嶋 恵", "中島 恵"),
          ("瀨戸 恵", "瀬戸 恵"), ("槇原 恵", "槙原 恵"), ("籠池 恵", "篭池 恵"), ("冨田 眞理", "富田 真理"),
      ]],
    pytest.param(as_member("M0001", "高木太郎"), view(TAKADA),
                 expect(REVIEW, "name_mismatch", None, None, ("M0001", "number_given_name_differs")),
                 id="a different name is not a variant"),
    # widths, cases and spaces in numbers and names
    pytest.param(as_member("Ｍ０００１", "髙田太郎"), view(TAKADA), expect(CONFIRMED, "active_member", "M0001"),
                 id="full-width number"),
    pytest.param(as_member(" m0001 ", "髙田太郎"), view(TAKADA), expect(CONFIRMED, "active_member", "M0001"),
                 id="lower-case padded number"),
    pytest.param(as_member("M0001", "髙田\u3000太郎"), view(TAKADA), expect(CONFIRMED, "active_member", "M0001"),
                 id="ideographic space"),
    pytest.param(as_member("M0001", "髙田\t太郎"), view(TAKADA), expect(CONFIRMED, "active_member", "M0001"),
                 id="tab"),
    pytest.param(as_member("M0001", "髙田\u00a0太郎"), view(TAKADA), expect(CONFIRMED, "active_member", "M0001"),
                 id="no-break space"),
    pytest.param(as_member("M0001", "髙 田 太 郎"), view(TAKADA), expect(CONFIRMED, "active_member", "M0001"),
                 id="spaces everywhere"),
    # readings: hiragana, half-width katakana, long-vowel and hyphen look-alikes
    pytest.param(as_member("M0001", "鷹田太郎", "たかだ たろう"), view(TAKADA),
                 expect(CONFIRMED, "active_member", "M0001"), id="hiragana reading"),
    pytest.param(as_member("M0001", "鷹田太郎", "ﾀｶﾀﾞ ﾀﾛｳ"), view(TAKADA),
                 expect(CONFIRMED, "active_member", "M0001"), id="half-width katakana reading"),
    pytest.param(as_member("M0004", "佐藤ルシー", "サトウ ル−シ−"), view(LUCY),
                 expect(CONFIRMED, "active_member", "M0004"), id="minus sign for the long vowel"),
    pytest.param(as_member("M0004", "佐藤ルシー", "さとう る～し～"), view(LUCY),
                 expect(CONFIRMED, "active_member", "M0004"), id="wave dash for the long vowel"),
    pytest.param(as_member("M0004", "佐藤 ル―シ―", ""), view(LUCY),
                 expect(CONFIRMED, "active_member", "M0004"), id="horizontal bar in the name"),
    pytest.param(as_member("M0004", "", "サトウ ルシー"), view(LUCY),
                 expect(REVIEW, "name_mismatch", None, None, ("M0004", "number_given_name_differs")),
                 id="a missing long vowel is a different reading"),
    # members: status, missing and unknown numbers, and who a reviewer is shown
    pytest.param(as_member("M0003", "齋藤 一郎"), view(SAITO_W), expect(REJECTED, "withdrawn_member", "M0003"),
                 id="withdrawn"),
    pytest.param(as_member("M0003", "髙田 太郎"), view(SAITO_W, named=[TAKADA]),
                 expect(REVIEW, "name_mismatch", None, None, ("M0003", "number_given_name_differs"),
                        ("M0001", "same_name")),
                 id="withdrawn member's number under another name: a typo, not a refusal"),
    pytest.param(as_member("M0001", "高田 太朗", "タカダ タロー"), view(TAKADA, named=[TAKADA_2]),
                 expect(REVIEW, "name_mismatch", None, None, ("M0001", "number_given_name_differs")),
                 id="name mismatch; a namesake row that does not match is not shown"),
    pytest.param(as_member("M0009", "高田 太郎", "たかだ たろう"), view(named=[TAKADA_3, TAKADA_2, TAKADA]),
                 expect(REVIEW, "member_unknown", None, None, ("M0001", "same_name"), ("M0101", "same_name"),
                        ("M0102", "same_kana")),
                 id="unknown number: namesakes, same name first"),
    pytest.param(as_member(None, "高田 太郎"), view(named=[TAKADA]),
                 expect(REVIEW, "member_no_missing", None, None, ("M0001", "same_name")), id="no number"),
    pytest.param(as_member("\u3000", "高田 太郎"), view(), expect(REVIEW, "member_no_missing"), id="blank number"),
    pytest.param(as_member("M0009", "鈴木 一", "スズキ ハジメ"),
                 view(named=[member(f"M08{i}", "鈴木 一", "スズキ ハジメ") for i in range(7)]),
                 expect(REVIEW, "member_unknown", None, None, *[(f"M08{i}", "same_name") for i in range(5)]),
                 id="at most five candidates"),
    # staff: legal forms and their abbreviations, widths, long vowels, prefectures
    pytest.param(as_staff("（医社）桜会さくらクリニック"), view(CLINIC, behind=[TAKADA]),
                 expect(CONFIRMED, "institution_of_active_member", "M0001", "I001"), id="(医社) for 医療法人社団"),
    pytest.param(as_staff("医療法人社団桜会　さくらクリニック"), view(CLINIC, behind=[TAKADA]),
                 expect(CONFIRMED, "institution_of_active_member", "M0001", "I001"), id="legal form spelt out"),
    pytest.param(as_staff("桜会 サクラクリニック", prefecture="東京"), view(CLINIC, behind=[TAKADA]),
                 expect(CONFIRMED, "institution_of_active_member", "M0001", "I001"),
                 id="no legal form, katakana, prefecture without 都"),
    pytest.param(as_staff("さくらクリニック"), view(nearby=[CLINIC], behind=[TAKADA]),
                 expect(REVIEW, "institution_unknown", None, None, ("I001", "similar_name")),
                 id="clinic name without the corporation's: a reviewer's near match"),
    pytest.param(as_staff("ケアライフ㈱", role="care_staff"), view(CARE_HOME, behind=[YAMAZAKI]),
                 expect(CONFIRMED, "institution_of_active_member", "M0002", "I002"), id="㈱ for 株式会社"),
    pytest.param(as_staff("(株)ｹｱﾗｲﾌ", role="care_staff"), view(CARE_HOME, behind=[YAMAZAKI]),
                 expect(CONFIRMED, "institution_of_active_member", "M0002", "I002"),
                 id="half-width parentheses and katakana"),
    pytest.param(as_staff("ｸﾞﾙｰﾌﾟﾎｰﾑひだまり", "大阪府", role="care_staff"), view(GROUP_HOME, behind=[KUDO]),
                 expect(CONFIRMED, "institution_of_active_member", "M0005", "I003"), id="half-width long vowel"),
    pytest.param(as_staff("グル−プホ−ム　ヒダマリ", "大阪府", role="care_staff"), view(GROUP_HOME, behind=[KUDO]),
                 expect(CONFIRMED, "institution_of_active_member", "M0005", "I003"), id="minus sign as long vowel"),
    pytest.param(as_staff("ぐるーぷほーむ ひだまり", "大阪府", role="care_staff"), view(GROUP_HOME, behind=[KUDO]),
                 expect(CONFIRMED, "institution_of_active_member", "M0005", "I003"), id="all in hiragana"),
    # staff: namesakes, the number that settles them, the number that does not belong
    pytest.param(as_staff("中央病院", "大阪府"), view(CHUO_B, CHUO_A, behind=[KUDO, NAKAJIMA, MORI]),
                 expect(REVIEW, "ambiguous_institution", None, None, ("I010", "same_name_same_prefecture"),
                        ("I011", "same_name_same_prefecture")),
                 id="two of one name in one prefecture"),
    pytest.param(as_staff("中央病院", "大阪府", manager="m0007"), view(CHUO_A, CHUO_B, behind=[KUDO, NAKAJIMA, MORI]),
                 expect(CONFIRMED, "institution_of_active_member", "M0007", "I011"),
                 id="settled by the manager's number"),
    pytest.param(as_staff("中央病院", "大阪府", manager="M9999"), view(CHUO_A, CHUO_B, behind=[KUDO]),
                 expect(REVIEW, "ambiguous_institution", None, None, ("I010", "same_name_same_prefecture"),
                        ("I011", "same_name_same_prefecture")),
                 id="a number that settles nothing"),
    pytest.param(as_staff("桜会さくらクリニック", manager="M0002"), view(CLINIC, behind=[TAKADA, YAMAZAKI]),
                 expect(REVIEW, "manager_mismatch", None, None, ("I001", "given_number_not_founder_or_manager")),
                 id="a manager's number that is not this institution's"),
    pytest.param(as_staff("ケアライフ"), view(CARE_HOME, behind=[YAMAZAKI]),
                 expect(REVIEW, "role_kind_mismatch", None, None, ("I002", "other_kind")),
                 id="medical staff naming a care facility"),
    pytest.param(as_staff("みどり診療所"),
                 view(MIDORI_KANAGAWA, MIDORI_CARE, MIDORI_HOKKAIDO,
                      nearby=[MIDORI_SAITAMA, MIDORI_DENTAL, MIDORI_NAIKA, MIDORI_KANAGAWA]),
                 expect(REVIEW, "institution_unknown", None, None, ("I031", "same_name_other_prefecture"),
                        ("I030", "same_name_other_prefecture"), ("I032", "same_name_other_prefecture"),
                        ("I033", "similar_name"), ("I035", "similar_name")),
                 id="unknown here: same name elsewhere, then similar names in the prefecture"),
    # staff: institutions with no member behind them
    pytest.param(as_staff("ひかり医院"), view(HIKARI_BLANK, HIKARI_GONE, HIKARI_W),
                 expect(REJECTED, "no_member_behind_institution", None, "I040"), id="no founder, no manager"),
    pytest.param(as_staff("ひかり医院", "京都府"), view(HIKARI_GONE, behind=[]),
                 expect(REJECTED, "no_member_behind_institution", None, "I041"), id="founder not in the registry"),
    pytest.param(as_staff("ひかり医院", "奈良県"), view(HIKARI_W, behind=[SAITO_W]),
                 expect(REJECTED, "no_member_behind_institution", None, "I042"), id="founder withdrawn"),
    pytest.param(as_staff("ひかり医院", "滋賀県", manager="M0003"), view(HIKARI_W_MGR, behind=[SAITO_W, YAMAZAKI]),
                 expect(CONFIRMED, "institution_of_active_member", "M0002", "I043"),
                 id="founder withdrawn, manager active"),
    # staff: what is missing
    pytest.param(as_staff("（医社）桜会さくらクリニック", prefecture=None), view(CLINIC, behind=[TAKADA]),
                 expect(REVIEW, "institution_prefecture_missing", None, None, ("I001", "same_name")),
                 id="no prefecture"),
    pytest.param(as_staff("（医社）桜会さくらクリニック", prefecture=None, manager="M0001"), view(CLINIC, behind=[TAKADA]),
                 expect(CONFIRMED, "institution_of_active_member", "M0001", "I001"),
                 id="no prefecture, but the founder's number"),
    pytest.param(as_staff(None), view(CLINIC), expect(REVIEW, "institution_name_missing"), id="no institution"),
    pytest.param(as_staff("　"), view(CLINIC), expect(REVIEW, "institution_name_missing"), id="blank institution"),
    pytest.param(as_staff("さくらクリニック"),
                 view(Institution("I050", "さくら歯科", "medical", "東京都", "M0001", None), behind=[TAKADA]),
                 expect(REVIEW, "institution_unknown", None, None, ("I050", "similar_name")),
                 id="a row fetched under another key is only a similar name"),
]


@pytest.mark.parametrize("applicant, registry, expected", CASES)
def test_rules(applicant, registry, expected):
    verdict = decide(applicant, registry)
    got = (verdict.outcome.value, verdict.reason, verdict.basis_member_no, verdict.institution_id,
           [(c.ref, c.why) for c in verdict.candidates])
    assert got == expected


@pytest.mark.parametrize("applicant, registry, expected", CASES)
def test_only_a_review_names_candidates_and_never_more_than_five(applicant, registry, expected):
    verdict = decide(applicant, registry)
    assert isinstance(verdict, Verdict)
    if verdict.outcome is Outcome.REVIEW:
        assert len(verdict.candidates) <= 5
        assert len({c.ref for c in verdict.candidates}) == len(verdict.candidates)
    else:
        assert verdict.candidates == ()


def test_candidates_carry_the_registry_name():
    verdict = decide(as_member("M0009", "高田 太郎"), view(named=[TAKADA]))
    assert [(c.ref, c.name) for c in verdict.candidates] == [("M0001", "髙田 太郎")]


@pytest.mark.parametrize("applicant, registry", [
    pytest.param(Applicant("visitor", "x", "x", None, None, None, None), view(), id="unknown role"),
    pytest.param(as_member("M0001", "髙田 太郎"), view(member("M0001", "髙田 太郎", "x", status="suspended")),
                 id="unknown member status"),
    pytest.param(as_member("M0001", "髙田 太郎"), view(member("M0002", "髙田 太郎", "x")),
                 id="registry row for another number"),
    pytest.param(as_staff("桜会さくらクリニック"), RegistryView(institutions=[CLINIC], members_behind={"M0001": YAMAZAKI}),
                 id="member behind filed under another number"),
    pytest.param(as_staff("桜会さくらクリニック"),
                 view(CLINIC, behind=[member("M0001", "髙田 太郎", "x", status="retired")]),
                 id="unknown status of the member behind"),
])
def test_impossible_input_is_an_error_not_a_verdict(applicant, registry):
    with pytest.raises(ValueError):
        decide(applicant, registry)
