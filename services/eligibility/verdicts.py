"""Who may use the desk: pure rules, no I/O.

The flyer's promise: members; medical staff of an institution a member founded or manages;
employees of a care facility a member founded or manages. Only a clear case is confirmed or
rejected automatically; anything a typo or a stale registry could explain goes to a human.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from services.eligibility.registry_csv import normalize_member_no, normalize_name

ROLE_KIND = {"medical_staff": "medical", "care_staff": "care"}


class Outcome(str, Enum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    REVIEW = "review_requested"


@dataclass(frozen=True)
class Member:
    member_no: str
    status: str  # "active" | "withdrawn"
    prefecture: str


@dataclass(frozen=True)
class Institution:
    institution_id: str
    name: str
    kind: str  # "medical" | "care"
    prefecture: str
    founder_member_no: str | None
    manager_member_no: str | None


@dataclass(frozen=True)
class Applicant:
    role: str  # "member" | "medical_staff" | "care_staff"
    member_no: str | None
    institution_name: str | None
    institution_prefecture: str | None
    manager_member_no: str | None  # staff: the founder's or manager's member number

    def __post_init__(self) -> None:
        if self.role != "member" and self.role not in ROLE_KIND:
            raise ValueError(f"unknown applicant role: {self.role!r}")


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    basis_member_no: str | None
    institution_id: str | None = None


def decide(applicant: Applicant, member: Member | None,
           institutions: Sequence[Institution]) -> Verdict:
    """`member` is the registry row for the number that matters (None if not found);
    `institutions` are those the registry links to that number as founder or manager."""
    given = applicant.member_no if applicant.role == "member" else applicant.manager_member_no
    number = normalize_member_no(given) if given else ""
    if not number:
        return Verdict(Outcome.REVIEW, "member_no_missing", None)
    if member is not None and normalize_member_no(member.member_no) != number:
        # A lookup bug must not turn into someone else's membership.
        raise ValueError("member row does not belong to the number given")
    if applicant.role == "member":
        return _decide_member(number, member)
    return _decide_staff(applicant, number, member, institutions)


def _decide_member(number: str, member: Member | None) -> Verdict:
    if member is None:
        return Verdict(Outcome.REVIEW, "unknown_member", number)  # may be a typo
    if member.status == "withdrawn":
        return Verdict(Outcome.REJECTED, "withdrawn_member", number)
    if member.status == "active":
        return Verdict(Outcome.CONFIRMED, "active_member", number)
    raise ValueError(f"unknown member status: {member.status!r}")


def _decide_staff(applicant: Applicant, number: str, member: Member | None,
                  institutions: Sequence[Institution]) -> Verdict:
    if member is None:
        return Verdict(Outcome.REVIEW, "manager_not_member", number)
    if member.status == "withdrawn":
        # Another founder or manager may still be a member: a human checks, never a rejection.
        return Verdict(Outcome.REVIEW, "manager_withdrawn", number)
    if member.status != "active":
        raise ValueError(f"unknown member status: {member.status!r}")
    if not applicant.institution_name or not normalize_name(applicant.institution_name):
        return Verdict(Outcome.REVIEW, "institution_name_missing", number)

    wanted_name = normalize_name(applicant.institution_name)
    wanted_pref = (applicant.institution_prefecture or "").strip()
    linked = [i for i in institutions if number in _linked_numbers(i)]
    named = [i for i in linked if normalize_name(i.name) == wanted_name
             and (not wanted_pref or i.prefecture == wanted_pref)]
    matches = [i for i in named if i.kind == ROLE_KIND[applicant.role]]
    if matches:
        # Several same-named matches (no prefecture given) are all this member's: eligible,
        # but naming one of them would be a guess.
        institution_id = matches[0].institution_id if len(matches) == 1 else None
        return Verdict(Outcome.CONFIRMED, "institution_of_active_member", number, institution_id)
    if named:
        return Verdict(Outcome.REVIEW, "institution_kind_mismatch", number, named[0].institution_id)
    return Verdict(Outcome.REVIEW, "institution_not_registered", number)


def _linked_numbers(institution: Institution) -> set[str]:
    return {normalize_member_no(n) for n in
            (institution.founder_member_no, institution.manager_member_no) if n}
