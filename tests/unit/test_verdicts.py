import pytest

from services.eligibility.verdicts import (
    Applicant, Institution, Member, Outcome, Verdict, decide,
)

ACTIVE = Member("M0001", "active", "東京都")
WITHDRAWN = Member("M0002", "withdrawn", "大阪府")

CLINIC = Institution("I0001", "架空クリニック", "medical", "東京都", "M0001", None)
CARE_HOME = Institution("I0002", "架空ケアホーム", "care", "東京都", None, "M0001")
# Same member, two institutions with one name in different prefectures.
CLINIC_OSAKA = Institution("I0003", "架空クリニック", "medical", "大阪府", None, "M0001")


def member(no):
    return Applicant("member", no, None, None, None)


def staff(role, name, manager="M0001", prefecture=None):
    return Applicant(role, None, name, prefecture, manager)


@pytest.mark.parametrize("no, row, expected", [
    (None, None, Verdict(Outcome.REVIEW, "member_no_missing", None)),
    ("  ", None, Verdict(Outcome.REVIEW, "member_no_missing", None)),
    ("M9999", None, Verdict(Outcome.REVIEW, "unknown_member", "M9999")),
    ("M0002", WITHDRAWN, Verdict(Outcome.REJECTED, "withdrawn_member", "M0002")),
    ("M0001", ACTIVE, Verdict(Outcome.CONFIRMED, "active_member", "M0001")),
    ("Ｍ０００１", ACTIVE, Verdict(Outcome.CONFIRMED, "active_member", "M0001")),
    (" m0001 ", ACTIVE, Verdict(Outcome.CONFIRMED, "active_member", "M0001")),
])
def test_member_rules(no, row, expected):
    assert decide(member(no), row, []) == expected


def test_member_role_ignores_institution_fields():
    applicant = Applicant("member", "M0001", "どこかの病院", "東京都", "M0002")
    assert decide(applicant, ACTIVE, []).outcome is Outcome.CONFIRMED


@pytest.mark.parametrize("role", ["medical_staff", "care_staff"])
@pytest.mark.parametrize("manager, row, reason", [
    (None, None, "member_no_missing"),
    ("", None, "member_no_missing"),
    ("M9999", None, "manager_not_member"),
    ("M0002", WITHDRAWN, "manager_withdrawn"),
])
def test_staff_never_rejected_automatically(role, manager, row, reason):
    verdict = decide(staff(role, "架空クリニック", manager), row, [CLINIC, CARE_HOME])
    assert verdict.outcome is Outcome.REVIEW
    assert verdict.reason == reason
    assert verdict.institution_id is None


@pytest.mark.parametrize("role, name, prefecture, institution_id", [
    ("medical_staff", "架空クリニック", None, "I0001"),
    ("medical_staff", "架空クリニック", "東京都", "I0001"),
    ("medical_staff", " 架空　クリニック ", "東京都", "I0001"),  # full-width space
    ("medical_staff", "架空ｸﾘﾆｯｸ", "東京都", "I0001"),  # half-width kana
    ("care_staff", "架空ケアホーム", None, "I0002"),
    ("care_staff", "架空ケアホーム", "東京都", "I0002"),
])
def test_staff_of_active_members_institution_confirmed(role, name, prefecture, institution_id):
    verdict = decide(staff(role, name, prefecture=prefecture), ACTIVE, [CLINIC, CARE_HOME])
    assert verdict == Verdict(
        Outcome.CONFIRMED, "institution_of_active_member", "M0001", institution_id,
    )


def test_manager_number_is_normalised():
    verdict = decide(staff("medical_staff", "架空クリニック", "ｍ０００１"), ACTIVE, [CLINIC])
    assert verdict.outcome is Outcome.CONFIRMED
    assert verdict.basis_member_no == "M0001"


@pytest.mark.parametrize("role, name, institution_id", [
    ("care_staff", "架空クリニック", "I0001"),  # care worker naming a medical institution
    ("medical_staff", "架空ケアホーム", "I0002"),
])
def test_name_match_with_wrong_kind_goes_to_review(role, name, institution_id):
    verdict = decide(staff(role, name), ACTIVE, [CLINIC, CARE_HOME])
    assert verdict == Verdict(Outcome.REVIEW, "institution_kind_mismatch", "M0001", institution_id)


@pytest.mark.parametrize("name, prefecture, institutions", [
    ("見本病院", None, [CLINIC, CARE_HOME]),  # not among the member's institutions
    ("架空クリニック", "北海道", [CLINIC]),  # same name, other prefecture
    ("架空クリニック", None, []),  # member has no registered institution
])
def test_unmatched_institution_goes_to_review(name, prefecture, institutions):
    verdict = decide(staff("medical_staff", name, prefecture=prefecture), ACTIVE, institutions)
    assert verdict == Verdict(Outcome.REVIEW, "institution_not_registered", "M0001")


def test_institution_name_missing_goes_to_review():
    verdict = decide(staff("medical_staff", "　"), ACTIVE, [CLINIC])
    assert verdict == Verdict(Outcome.REVIEW, "institution_name_missing", "M0001")


def test_institution_not_linked_to_the_member_is_not_trusted():
    # The caller should only pass linked institutions; if it does not, no confirmation follows.
    foreign = Institution("I0009", "架空クリニック", "medical", "東京都", "M0777", "M0778")
    verdict = decide(staff("medical_staff", "架空クリニック"), ACTIVE, [foreign])
    assert verdict.reason == "institution_not_registered"


def test_founder_or_manager_link_both_count():
    assert decide(staff("medical_staff", "架空クリニック"), ACTIVE, [CLINIC]).outcome \
        is Outcome.CONFIRMED  # linked as founder
    assert decide(staff("care_staff", "架空ケアホーム"), ACTIVE, [CARE_HOME]).outcome \
        is Outcome.CONFIRMED  # linked as manager


def test_prefecture_disambiguates_same_named_institutions():
    institutions = [CLINIC, CLINIC_OSAKA]
    osaka = decide(staff("medical_staff", "架空クリニック", prefecture="大阪府"), ACTIVE, institutions)
    assert osaka.institution_id == "I0003"
    either = decide(staff("medical_staff", "架空クリニック"), ACTIVE, institutions)
    assert either.outcome is Outcome.CONFIRMED  # both belong to the member
    assert either.institution_id is None  # but naming one would be a guess


def test_member_row_for_another_number_is_a_caller_error():
    with pytest.raises(ValueError):
        decide(member("M0003"), ACTIVE, [])


def test_unknown_role_is_refused():
    with pytest.raises(ValueError):
        Applicant("visitor", "M0001", None, None, None)


def test_outcome_values_are_the_event_vocabulary():
    assert [o.value for o in Outcome] == ["confirmed", "rejected", "review_requested"]
