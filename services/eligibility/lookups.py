"""The registry rows a batch of applicants needs (a rules.RegistryView each), in three statements
whatever the batch's size: the members by the numbers given, the institutions by their names,
then the members behind those institutions together with the members of the same name or
reading. Only an institution the registry lacks in the prefecture given costs a statement of its
own: its near names (pg_trgm)."""
from collections import defaultdict

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.eligibility import rules
from services.eligibility.orm import institutions, members

NEAR = 5  # near names looked up for an institution the registry does not know


class Wanted:
    """What one applicant's verdict needs looked up, in the form the registry stores its keys."""

    def __init__(self, applicant: rules.Applicant):
        member = applicant.role == "member"
        self.number = rules.member_no(applicant.member_no or "") if member else ""
        self.name = rules.person_name(applicant.name or "") if member else ""
        self.kana = rules.kana(applicant.name_kana or "") if member else ""
        self.key = "" if member else rules.institution_key(applicant.institution_name or "")
        self.prefecture = applicant.institution_prefecture


async def registry_views(session: AsyncConnection, applicants: list[rules.Applicant]) -> list[rules.RegistryView]:
    if not applicants:
        return []
    wanted = [Wanted(a) for a in applicants]
    by_number = {m.member_no: m for m, _ in await _members(
        session, members.c.member_no.in_({w.number for w in wanted if w.number}))}
    by_key: dict[str, list[rules.Institution]] = defaultdict(list)
    if keys := {w.key for w in wanted if w.key}:
        for row in await session.execute(select(institutions).where(institutions.c.name_normalized.in_(keys))
                                         .order_by(institutions.c.institution_id)):
            by_key[row.name_normalized].append(_institution(row))
    behind = {n for found in by_key.values() for i in found for n in (i.founder_member_no, i.manager_member_no) if n}
    related = await _members(session, or_(
        members.c.member_no.in_(behind), members.c.name_key.in_({w.name for w in wanted if w.name}),
        members.c.kana_key.in_({w.kana for w in wanted if w.kana})))
    namesakes: dict[str, list[rules.Member]] = defaultdict(list)  # by name key and by kana key
    for member, (name_key, kana_key) in related:
        namesakes["name:" + name_key].append(member)
        namesakes["kana:" + kana_key].append(member)
    by_no = {m.member_no: m for m, _ in related}
    views, near = [], {}
    for w in wanted:
        found = by_key.get(w.key, [])
        views.append(rules.RegistryView(
            member=by_number.get(w.number),
            members_named=list({m.member_no: m for m in (*namesakes.get("name:" + w.name, ()),
                                                         *namesakes.get("kana:" + w.kana, ()))}.values()),
            institutions=found,
            nearby=await _nearby(session, w.key, near) if w.key and not _in_prefecture(found, w) else [],
            members_behind={n: by_no[n] for i in found for n in (i.founder_member_no, i.manager_member_no)
                            if n in by_no},
        ))
    return views


def _in_prefecture(found: list[rules.Institution], wanted: Wanted) -> bool:
    return bool(wanted.prefecture) and any(i.prefecture == wanted.prefecture for i in found)


async def _members(session: AsyncConnection, where) -> list[tuple[rules.Member, tuple[str, str]]]:
    """Members and their stored (name key, kana key)."""
    rows = await session.execute(select(members).where(where).order_by(members.c.member_no))
    return [(rules.Member(r.member_no, r.name, r.name_kana, r.status, r.prefecture), (r.name_key, r.kana_key))
            for r in rows]


async def _nearby(session: AsyncConnection, key: str, near: dict) -> list[rules.Institution]:
    """The institutions whose names are nearest `key` (trigram similarity over pg_trgm's threshold),
    looked up once a batch (`near`)."""
    if key in near:
        return near[key]
    distance = institutions.c.name_normalized.op("<->")(key)
    rows = await session.execute(
        select(institutions).where(institutions.c.name_normalized.op("%")(key), institutions.c.name_normalized != key)
        .order_by(distance, institutions.c.institution_id).limit(NEAR))
    near[key] = [_institution(r) for r in rows]
    return near[key]


def _institution(row) -> rules.Institution:
    return rules.Institution(row.institution_id, row.name, row.kind, row.prefecture,
                             row.founder_member_no, row.manager_member_no)
