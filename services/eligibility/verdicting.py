"""Use case of eligibility: judge received consultations against the member registry, once.

A batch costs the same few statements whatever its size: the inbox, the verdicts already
written, the registry rows for every number that matters, the new verdicts, their events."""
import logging
import uuid

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.eligibility import verdicts as rules
from services.eligibility.orm import inbox, institutions, members, outbox, verdicts
from services.eligibility.registry_csv import normalize_member_no
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events

log = logging.getLogger("payhara.eligibility")
CONSUMER = "eligibility.judge"

Registry = tuple[dict[str, rules.Member], list[rules.Institution]]


async def judge(deliveries: list[Delivery[ev.ConsultationReceived]], sessions: Database) -> None:
    """Verdict rows, inbox rows and the verdicts' events of a batch in one transaction."""
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, deliveries)
        received: dict[uuid.UUID, ev.ConsultationReceived] = {}
        for delivery in fresh:  # a consultation published twice is judged from its first copy
            received.setdefault(delivery.event.consultation_id, delivery.event)
        judged = await _already_judged(session, list(received))
        waiting = [(event, _applicant(event)) for cid, event in sorted(received.items()) if cid not in judged]
        registry = await _registry_for(session, {_number_that_matters(a) for _, a in waiting} - {None})
        decided = [(event, _decide(applicant, registry)) for event, applicant in waiting]
        inserted = await _write_verdicts(session, decided)
        # a concurrent delivery of another copy may have won the race: no second event then
        written = {event.consultation_id: (event, verdict) for event, verdict in decided
                   if event.consultation_id in inserted}
        await add_events(session, outbox, [(_event_for(event, verdict), event.consultation_id)
                                           for event, verdict in written.values()])
    for delivery in fresh:  # each verdict logged once, any other copy as already judged
        event, verdict = written.pop(delivery.event.consultation_id, (delivery.event, None))
        if verdict is None:
            log.info("already judged: receipt=%s", event.receipt_no)  # published twice by intake
        else:
            log.info("verdict: receipt=%s outcome=%s reason=%s", event.receipt_no, verdict.outcome.value,
                     verdict.reason)


def _applicant(event: ev.ConsultationReceived) -> rules.Applicant:
    return rules.Applicant(
        role=event.consultant.role,
        member_no=event.consultant.member_no,
        institution_name=event.institution.name,
        institution_prefecture=event.institution.prefecture,
        manager_member_no=event.institution.manager_member_no,
    )


def _number_that_matters(applicant: rules.Applicant) -> str | None:
    given = applicant.member_no if applicant.role == "member" else applicant.manager_member_no
    return normalize_member_no(given) or None if given else None


async def _already_judged(session: AsyncConnection, consultation_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not consultation_ids:
        return set()
    return set(await session.scalars(
        select(verdicts.c.consultation_id).where(verdicts.c.consultation_id.in_(consultation_ids))))


async def _registry_for(session: AsyncConnection, numbers: set[str]) -> Registry:
    """The member rows for `numbers` and the institutions any of them founded or manages."""
    if not numbers:
        return {}, []
    rows = (await session.execute(select(members).where(members.c.member_no.in_(numbers)))).all()
    found = {r.member_no: rules.Member(r.member_no, r.status, r.prefecture) for r in rows}
    rows = (await session.execute(
        select(institutions).where(or_(institutions.c.founder_member_no.in_(numbers),
                                       institutions.c.manager_member_no.in_(numbers)))
        .order_by(institutions.c.institution_id)
    )).all()
    linked = [rules.Institution(r.institution_id, r.name, r.kind, r.prefecture,
                                r.founder_member_no, r.manager_member_no) for r in rows]
    return found, linked


def _decide(applicant: rules.Applicant, registry: Registry) -> rules.Verdict:
    """The pure rule, given the registry's rows for the applicant's number."""
    number = _number_that_matters(applicant)
    if number is None:
        return rules.decide(applicant, None, [])
    found, linked = registry
    return rules.decide(applicant, found.get(number),
                        [i for i in linked if number in (i.founder_member_no, i.manager_member_no)])


async def _write_verdicts(session: AsyncConnection,
                          decided: list[tuple[ev.ConsultationReceived, rules.Verdict]]) -> set[uuid.UUID]:
    """Insert in consultation order (every instance locks in the same order); returns the
    consultations whose verdict this transaction wrote."""
    if not decided:
        return set()
    inserted = await session.execute(
        upsert(verdicts).on_conflict_do_nothing().returning(verdicts.c.consultation_id),
        [{"consultation_id": event.consultation_id, "receipt_no": event.receipt_no,
          "outcome": verdict.outcome.value, "reason": verdict.reason,
          "basis_member_no": verdict.basis_member_no, "institution_id": verdict.institution_id}
         for event, verdict in decided],
    )
    return set(inserted.scalars())


def _event_for(event: ev.ConsultationReceived, verdict: rules.Verdict) -> ev.Event:
    common = {"consultation_id": event.consultation_id, "receipt_no": event.receipt_no, "reason": verdict.reason}
    if verdict.outcome is rules.Outcome.CONFIRMED:
        return ev.EligibilityConfirmed(**common, contact_expected_from=event.contact_expected_from,
                                       urgent=event.urgent, preferred_time=event.preferred_time,
                                       contact_method=event.contact.method)
    if verdict.outcome is rules.Outcome.REJECTED:
        return ev.EligibilityRejected(**common)
    return ev.EligibilityReviewRequested(**common)
