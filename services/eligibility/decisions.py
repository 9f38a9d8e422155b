"""Use case of eligibility: an operator's decision on a consultation the registry could not settle
(eligibility.decided.v1) becomes the final verdict, published once as eligibility.confirmed.v1 or
eligibility.rejected.v1 with the operator as its source.

The first decision wins: a decision is applied only to a verdict under review that has no
decision yet, by one conditional insert (the primary key of `decisions` backs it up), so two
operators deciding at once, or one decision published twice, give one final verdict. Any other
decision is not applied; it is kept (`applied` false, and why) and logged, for the console to
show the operator who came second."""
import logging

from prometheus_client import Counter
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.eligibility.orm import decisions, inbox, outbox, verdicts
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events

log = logging.getLogger("payhara.eligibility")
not_applied = Counter("payhara_decisions_not_applied", "Operators' eligibility decisions not applied "
                      "(another decision came first, or the consultation was not under review)", ["why"])
CONSUMER = "eligibility.decide"

# the decision, only for a verdict under review that has no applied decision yet
APPLY = text("""
INSERT INTO eligibility.decisions (consultation_id, event_id, operator_id, decision, reason, decided_at, applied)
SELECT v.consultation_id, :event_id, :operator_id, :decision, :reason, :decided_at, true
FROM eligibility.verdicts v
WHERE v.consultation_id = :consultation_id AND v.outcome = 'review_requested'
ON CONFLICT (consultation_id) WHERE applied DO NOTHING
RETURNING consultation_id
""")


async def decide(deliveries: list[Delivery[ev.EligibilityDecided]], sessions: Database) -> None:
    """Each decision of the batch applied or not, with the final verdicts' events, in one transaction."""
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, deliveries)
        applied, refused = [], []
        # earliest decision first: of two in one batch, the one taken first wins
        for delivery in sorted(fresh, key=lambda d: (d.event.decided_at, d.envelope.event_id)):
            event = delivery.event
            row = {"consultation_id": event.consultation_id, "event_id": delivery.envelope.event_id,
                   "operator_id": event.operator_id, "decision": event.decision, "reason": event.reason,
                   "decided_at": event.decided_at}
            if await session.scalar(APPLY, row) is not None:
                applied.append(event)
            else:
                refused.append((event, await _why_not(session, row)))
        finals = {v.consultation_id: v for v in (await session.execute(
            select(verdicts).where(verdicts.c.consultation_id.in_([e.consultation_id for e in applied])))).all()}
        await add_events(session, outbox, [(final_verdict(e, finals[e.consultation_id]), e.consultation_id)
                                           for e in applied])
    for event in applied:
        log.info("decision applied: receipt=%s decision=%s operator=%s", event.receipt_no, event.decision,
                 event.operator_id)
    for event, why in refused:
        not_applied.labels(why).inc()
        log.warning("decision not applied (%s): receipt=%s decision=%s operator=%s", why, event.receipt_no,
                    event.decision, event.operator_id)


async def _why_not(session: AsyncConnection, row: dict) -> str:
    """Keep a decision that is not applied, and say why."""
    outcome = await session.scalar(select(verdicts.c.outcome).where(
        verdicts.c.consultation_id == row["consultation_id"]))
    why = ("unknown_consultation" if outcome is None else
           "not_under_review" if outcome != "review_requested" else "already_decided")
    await session.execute(insert(decisions).values(**row, applied=False, why_not_applied=why))
    return why


def final_verdict(decision: ev.EligibilityDecided, verdict) -> ev.Event:
    """The verdict an operator's decision makes, with what the scheduler books by (kept from the
    consultation when it was judged)."""
    common = {"consultation_id": decision.consultation_id, "receipt_no": verdict.receipt_no,
              "reason": decision.reason, "decided_by": decision.operator_id}
    if decision.decision == "confirm":
        return ev.EligibilityConfirmed(**common, contact_expected_from=verdict.contact_expected_from,
                                       urgent=verdict.urgent, preferred_time=verdict.preferred_time,
                                       contact_method=verdict.contact_method)
    return ev.EligibilityRejected(**common)
