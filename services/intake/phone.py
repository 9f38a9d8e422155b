"""Use case: a consultation an operator took on the phone (consultation.submitted.v1) gets a
receipt like a web one, or is refused with the web form's own reasons for the operator to fix.

- Once per submission: the inbox drops a redelivered event, and the unique submission id on the
  consultation drops a submission the console published again under a new event id. At most one
  consultation.received.v1 names a submission, with its answer to the console,
  consultation.submission_accepted.v1 (the receipt number to read back); a repeat publishes
  nothing (the first answer is on its way through the outbox).
- The status code: the console made it and showed it to the operator, who reads it out with the
  receipt number; only its hash travels and is kept (shared/events.py, ConsultationSubmitted).
- Received when intake records it, not when the call was taken: the promised day is counted
  from a time the desk can still keep, even after a backlog.
- A batch costs a fixed number of statements whatever its size: the inbox, the scheduler's
  first free day, the serials, one insert of the consultations, one of the events (and one look-up
  when some are refused).
"""
import logging
import uuid
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.intake import receipts
from services.intake.consultations import FirstFreeDay, consultation_row, received_event, take_serials
from services.intake.forms import ConsultationForm, Rejected, parse
from services.intake.orm import consultations, inbox, outbox
from services.intake.promise import promised
from shared import events as ev
from shared.calendar import first_contact_day
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events

log = logging.getLogger("payhara.intake")
CONSUMER = "intake.submitted"
Submitted = Delivery[ev.ConsultationSubmitted]


async def take_phone_submissions(deliveries: list[Submitted], sessions: Database) -> None:
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, deliveries)
        accepted: dict[uuid.UUID, tuple[Submitted, ConsultationForm]] = {}
        refused: list[tuple[Submitted, list[dict]]] = []
        for d in fresh:
            try:
                form = parse(d.event.form)  # exactly the web form's and the API's rules
            except Rejected as problem:
                refused.append((d, problem.errors))
            else:
                accepted.setdefault(d.event.submission_id, (d, form))
        recorded = await _record(session, accepted)
        refused = await _not_received(session, refused, set(accepted))
        await add_events(session, outbox, [(e, row["id"]) for row, form in recorded
                                           for e in (received_event(row, form), _acceptance(row, accepted))]
                         + [(_refusal(d, errors), d.event.submission_id) for d, errors in refused])
    for row, _ in recorded:
        log.info("phone consultation received: receipt=%s id=%s submission=%s",
                 row["receipt_no"], row["id"], row["submission_id"])
    for d, errors in refused:  # codes only: the values are personal data
        log.info("phone submission %s refused: %s", d.event.submission_id,
                 ", ".join(f"{e['field']}:{e['code']}" for e in errors))


async def _record(session: AsyncConnection, accepted: dict[uuid.UUID, tuple[Submitted, ConsultationForm]]
                  ) -> list[tuple[dict, ConsultationForm]]:
    """The consultations of the submissions not received before, with their receipt numbers."""
    if not accepted:
        return []
    received_at = datetime.now(timezone.utc)
    first_free, calendar_day = FirstFreeDay(), first_contact_day(received_at)
    rows = []
    # sorted by submission id: two instances given the same submissions wait, never deadlock
    submission_ids = sorted(accepted)
    for submission_id, serial in zip(submission_ids, await take_serials(session, len(accepted))):
        d, form = accepted[submission_id]
        promise = promised(calendar_day, await first_free.read(session, form.contact.method))
        rows.append(consultation_row(
            uuid.uuid4(), receipts.receipt_no(serial, received_at), bytes.fromhex(d.event.status_token_hash),
            "phone", received_at, promise, form, submission_id=submission_id))
    inserted = set(await session.scalars(
        insert(consultations).values(rows).on_conflict_do_nothing(index_elements=[consultations.c.submission_id])
        .returning(consultations.c.submission_id)))
    for submission_id in set(submission_ids) - inserted:
        log.info("phone submission %s was received before: nothing more published", submission_id)
    return [(row, accepted[row["submission_id"]][1]) for row in rows if row["submission_id"] in inserted]


async def _not_received(session: AsyncConnection, refused: list[tuple[Submitted, list[dict]]],
                        accepted: set[uuid.UUID]) -> list[tuple[Submitted, list[dict]]]:
    """The refusals of submissions that have no consultation: a submission already received
    (a later copy with a broken form) is not refused afterwards."""
    if not refused:
        return []
    asked = {d.event.submission_id for d, _ in refused} - accepted
    known = set(await session.scalars(
        select(consultations.c.submission_id).where(consultations.c.submission_id.in_(asked)))) if asked else set()
    refusing = {}  # one refusal per submission of the batch
    for d, errors in refused:
        if d.event.submission_id in asked - known:
            refusing.setdefault(d.event.submission_id, (d, errors))
    return list(refusing.values())


def _acceptance(row: dict, accepted: dict) -> ev.ConsultationSubmissionAccepted:
    """The answer the operator on the phone waits for."""
    submitted = accepted[row["submission_id"]][0].event
    return ev.ConsultationSubmissionAccepted(
        submission_id=row["submission_id"], operator_id=submitted.operator_id, consultation_id=row["id"],
        receipt_no=row["receipt_no"], contact_expected_from=row["contact_expected_from"],
        contact_may_take_longer=row["contact_may_take_longer"])


def _refusal(d: Submitted, errors: list[dict]) -> ev.ConsultationSubmissionRefused:
    return ev.ConsultationSubmissionRefused(
        submission_id=d.event.submission_id, operator_id=d.event.operator_id,
        errors=[ev.SubmissionProblem(**e) for e in errors])
