"""Who may consult the desk, decided from the registry rows of one applicant: pure, no I/O.

The desk's rules, in plain words:
- A member gives their number. An active member whose name or reading matches is confirmed, a
  withdrawn one refused. An unknown number, or a name that differs, goes to a reviewer with the
  members of that name: a mistyped number must not lend anyone another person's membership, nor
  turn them away with another person's withdrawal.
- Medical staff name their institution, care staff their care facility, and its prefecture. With
  exactly one of that name and kind there, they are confirmed if its founder or manager is an active
  member, refused if neither is. A founder's or manager's number they give picks one among
  namesakes, and must belong to the institution they name.
- All else (no number, no name, no prefecture, namesakes, the other kind, a name the registry lacks)
  goes to a reviewer with at most five candidates. Names compare as names.py folds them (widths,
  spaces, kana, long vowels, variant kanji, legal forms): a spelling never decides alone.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from enum import Enum

from services.eligibility.names import institution_key, kana, member_no, person_name
from shared.prefectures import PREFECTURES

__all__ = ["ROLE_KIND", "Applicant", "Candidate", "Institution", "Member", "Outcome", "RegistryView",
           "Verdict", "decide", "institution_key", "kana", "member_no", "person_name"]

ROLE_KIND = {"medical_staff": "medical", "care_staff": "care"}
MEMBER_STATUSES = ("active", "withdrawn")
MAX_CANDIDATES = 5


class Outcome(str, Enum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    REVIEW = "review_requested"


@dataclass(frozen=True)
class Member:
    member_no: str
    name: str
    name_kana: str
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
    name: str
    name_kana: str
    member_no: str | None
    institution_name: str | None
    institution_prefecture: str | None
    manager_member_no: str | None


@dataclass(frozen=True)
class Candidate:
    ref: str  # a member number or an institution id
    name: str  # the registry's name
    why: str  # machine code: why it is close


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    basis_member_no: str | None = None
    institution_id: str | None = None
    candidates: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class RegistryView:
    """The registry rows that matter to one applicant, fetched by verdicting."""
    member: Member | None = None  # the row for the member number given (role member)
    members_named: Sequence[Member] = ()  # same person_name or kana as the applicant's
    institutions: Sequence[Institution] = ()  # same institution_key, any prefecture, any kind
    nearby: Sequence[Institution] = ()  # similar institution_key, any prefecture
    members_behind: Mapping[str, Member] = field(default_factory=dict)  # founders, managers


def decide(applicant: Applicant, registry: RegistryView) -> Verdict:
    if applicant.role == "member":
        return _decide_member(applicant, registry)
    if applicant.role in ROLE_KIND:
        return _decide_staff(applicant, registry, ROLE_KIND[applicant.role])
    raise ValueError(f"unknown applicant role: {applicant.role!r}")


# --- members ----------------------------------------------------------------------------------

def _decide_member(applicant: Applicant, registry: RegistryView) -> Verdict:
    number = member_no(applicant.member_no or "")
    named = _namesakes(applicant, registry.members_named)
    row = registry.member
    if not number:
        return _review("member_no_missing", named)
    if row is None:
        return _review("member_unknown", named)
    if member_no(row.member_no) != number:  # a lookup bug must not become someone else's membership
        raise ValueError(f"registry row {row.member_no!r} is not the member number given {number!r}")
    active = _is_active(row)
    if _likeness(applicant, row) is None:
        mismatch = Candidate(row.member_no, row.name, "number_given_name_differs")
        return _review("name_mismatch", [mismatch, *named])
    if not active:
        return Verdict(Outcome.REJECTED, "withdrawn_member", basis_member_no=number)
    return Verdict(Outcome.CONFIRMED, "active_member", basis_member_no=number)


def _likeness(applicant: Applicant, member: Member) -> str | None:
    """same_name, same_kana (a reading given as either field counts), or None."""
    names = (person_name(applicant.name or ""), person_name(member.name or ""))
    given, registered = {kana(applicant.name_kana or ""), names[0]}, {kana(member.name_kana or ""), names[1]}
    if names[0] and names[0] == names[1]:
        return "same_name"
    return "same_kana" if (given & registered) - {""} else None


def _namesakes(applicant: Applicant, members: Iterable[Member]) -> list[Candidate]:
    found = [(m, why) for m in members if (why := _likeness(applicant, m))]
    found.sort(key=lambda mw: (mw[1] != "same_name", mw[0].status != "active", mw[0].member_no))
    return [Candidate(m.member_no, m.name, why) for m, why in found]


def _is_active(member: Member) -> bool:
    if member.status not in MEMBER_STATUSES:
        raise ValueError(f"unknown member status {member.status!r} for {member.member_no!r}")
    return member.status == "active"


# --- medical and care staff -------------------------------------------------------------------

def _decide_staff(applicant: Applicant, registry: RegistryView, kind: str) -> Verdict:
    key = institution_key(applicant.institution_name or "")
    if not key:
        return _review("institution_name_missing")
    given = member_no(applicant.manager_member_no or "")
    prefecture = _prefecture(applicant.institution_prefecture)
    same, similar = _same_and_similar(key, kind, prefecture, registry)
    here = [i for i in same if not prefecture or _prefecture(i.prefecture) == prefecture]
    fitting = [i for i in here if i.kind == kind]
    chosen = [i for i in fitting if given and given in _linked(i)]
    if prefecture and len(fitting) == 1:
        return _decide_institution(fitting[0], given, registry.members_behind)
    if len(chosen) == 1:  # a founder's or manager's number picks one among namesakes
        return _decide_institution(chosen[0], given, registry.members_behind)
    if not prefecture:  # a name alone does not tell one prefecture's clinic from another's
        return _review("institution_prefecture_missing", [*_about(same, "same_name"),
                                                          *_about(similar, "similar_name")])
    if fitting:
        return _review("ambiguous_institution", _about(fitting, "same_name_same_prefecture"))
    if here:
        return _review("role_kind_mismatch", _about(here, "other_kind"))
    return _review("institution_unknown", [*_about(same, "same_name_other_prefecture"),
                                           *_about(similar, "similar_name")])


def _decide_institution(institution: Institution, given: str, behind: Mapping[str, Member]) -> Verdict:
    linked = _linked(institution)
    if given and given not in linked:
        return _review("manager_mismatch", _about([institution], "given_number_not_founder_or_manager"))
    members = {member_no(number): m for number, m in behind.items()}
    for number in sorted(linked, key=lambda n: n != given):  # the number given first, then founder
        member = members.get(number)
        if member is not None and member_no(member.member_no) != number:
            raise ValueError(f"registry row {member.member_no!r} filed under {number!r}")
        if member is not None and _is_active(member):
            return Verdict(Outcome.CONFIRMED, "institution_of_active_member", basis_member_no=number,
                           institution_id=institution.institution_id)
    return Verdict(Outcome.REJECTED, "no_member_behind_institution",
                   institution_id=institution.institution_id)


def _linked(institution: Institution) -> list[str]:
    """Founder's, then manager's member number, normalised; blanks left out."""
    numbers = (member_no(n or "") for n in (institution.founder_member_no, institution.manager_member_no))
    return list(dict.fromkeys(n for n in numbers if n))


def _prefecture(name: str | None) -> str:
    """'東京' or ' 東京都 ' -> '東京都'; '' when none was given."""
    name = person_name(name or "")
    return next((p for p in (name, *(name + s for s in "都道府県")) if p in PREFECTURES), name)


def _same_and_similar(key: str, kind: str, prefecture: str, registry: RegistryView) -> tuple[list, list]:
    """Rows of the applicant's key (their kind first), and the others, closest first. The key
    decides, not the list a row came in: a row stored under a stale key is only a similar name."""
    rows = {i.institution_id: i for i in [*registry.institutions, *registry.nearby]}.values()
    same = [i for i in rows if institution_key(i.name) == key]

    def closeness(i: Institution) -> tuple[bool, float, str]:
        ratio = SequenceMatcher(None, key, institution_key(i.name)).ratio()
        return (_prefecture(i.prefecture) != prefecture, -ratio, i.institution_id)

    return (sorted(same, key=lambda i: (i.kind != kind, _order(i))),
            sorted((i for i in rows if i not in same), key=closeness))


def _order(institution: Institution) -> tuple[int, str]:
    p = _prefecture(institution.prefecture)
    return (PREFECTURES.index(p) if p in PREFECTURES else len(PREFECTURES), institution.institution_id)


# --- verdicts ---------------------------------------------------------------------------------

def _about(institutions: Iterable[Institution], why: str) -> list[Candidate]:
    return [Candidate(i.institution_id, i.name, why) for i in institutions]


def _review(reason: str, candidates: Iterable[Candidate] = ()) -> Verdict:
    first: dict[str, Candidate] = {}
    for candidate in candidates:  # each candidate once, under its first (closest) reason
        first.setdefault(candidate.ref, candidate)
    return Verdict(Outcome.REVIEW, reason, candidates=tuple(first.values())[:MAX_CANDIDATES])
