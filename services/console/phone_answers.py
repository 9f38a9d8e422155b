"""Use case of the console: keep intake's answer to each consultation an operator entered on the
phone, the receipt number to read back to the caller or the fields to correct. The phone entry
screen (which publishes consultation.submitted.v1 and waits for this answer) reads them with
`answer_to`. The first answer for a submission stays: intake gives at most one."""
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row

from services.console.orm import inbox, phone_answers
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery

log = logging.getLogger("payhara.console")
CONSUMER = "console.phone_answer"
Answer = ev.ConsultationSubmissionAccepted | ev.ConsultationSubmissionRefused


async def keep_answers(deliveries: list[Delivery[Answer]], sessions: Database) -> None:
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, deliveries)
        if fresh:
            await session.execute(insert(phone_answers).on_conflict_do_nothing(),
                                  [_row(d.event, d.envelope) for d in fresh])
    for d in fresh:
        log.info("phone submission %s %s", d.event.submission_id,
                 f"received as {d.event.receipt_no}" if isinstance(d.event, ev.ConsultationSubmissionAccepted)
                 else "refused: " + ", ".join(f"{e.field}:{e.code}" for e in d.event.errors))


async def answer_to(submission_id: uuid.UUID, sessions: Database) -> Row | None:
    async with sessions() as session:
        return (await session.execute(
            select(phone_answers).where(phone_answers.c.submission_id == submission_id))).first()


def _row(event: Answer, envelope: ev.Envelope) -> dict:
    common = {"submission_id": event.submission_id, "operator_id": event.operator_id,
              "answered_at": envelope.occurred_at}
    if isinstance(event, ev.ConsultationSubmissionAccepted):
        return {**common, "consultation_id": event.consultation_id, "receipt_no": event.receipt_no,
                "contact_expected_from": event.contact_expected_from,
                "contact_may_take_longer": event.contact_may_take_longer, "errors": None}
    return {**common, "errors": [e.model_dump() for e in event.errors]}
