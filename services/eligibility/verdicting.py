"""Use case of eligibility: judge received consultations against the member registry, once.

A batch costs the same few statements whatever its size: the inbox, the verdicts already
written, the registry rows its applicants need (lookups.py), the new verdicts, their events. The
rules themselves are in rules.py."""
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.eligibility import rules
from services.eligibility.lookups import registry_views
from services.eligibility.orm import inbox, outbox, verdicts
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events

log = logging.getLogger("payhara.eligibility")
CONSUMER = "eligibility.judge"


async def judge(deliveries: list[Delivery[ev.ConsultationReceived]], sessions: Database) -> None:
    """Verdict rows, inbox rows and the verdicts' events of a batch in one transaction."""
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, deliveries)
        received: dict[uuid.UUID, ev.ConsultationReceived] = {}
        for delivery in fresh:  # a consultation published twice is judged from its first copy
            received.setdefault(delivery.event.consultation_id, delivery.event)
        judged = await _already_judged(session, list(received))
        waiting = [event for cid, event in sorted(received.items()) if cid not in judged]
        applicants = [_applicant(event) for event in waiting]
        views = await registry_views(session, applicants)
        decided = [(event, rules.decide(a, view)) for event, a, view in zip(waiting, applicants, views)]
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
        name=event.consultant.name,
        name_kana=event.consultant.name_kana,
        member_no=event.consultant.member_no,
        institution_name=event.institution.name,
        institution_prefecture=event.institution.prefecture,
        manager_member_no=event.institution.manager_member_no,
    )


async def _already_judged(session: AsyncConnection, consultation_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not consultation_ids:
        return set()
    return set(await session.scalars(
        select(verdicts.c.consultation_id).where(verdicts.c.consultation_id.in_(consultation_ids))))


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
          "basis_member_no": verdict.basis_member_no, "institution_id": verdict.institution_id,
          "candidates": [vars(c) for c in verdict.candidates], "contact_expected_from": event.contact_expected_from,
          "urgent": event.urgent, "preferred_time": event.preferred_time, "contact_method": event.contact.method}
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
    return ev.EligibilityReviewRequested(**common, candidates=[
        ev.ReviewCandidate(ref=c.ref, name=c.name, why=c.why) for c in verdict.candidates])
