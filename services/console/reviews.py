"""Use cases of membership reviews: keep why eligibility asked for one (and its candidates), show
it beside the consultation's review task, and record the operator's decision: the task closes,
the note stays here, eligibility.decided.v1 waits in the outbox. One decision per consultation."""
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert as plain_insert, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from services.console.accounts import Operator
from services.console.claims import why_not
from services.console.orm import inbox, operators, outbox, review_decisions, reviews, task_notes, tasks
from services.console.notes import notes_of
from services.console.refused import ActionRefused
from services.console.review_labels import DECISION_REASONS
from services.console.tasks import review_task
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_event

log = logging.getLogger("payhara.console")
CONSUMER = "console.review"


async def keep_reviews(deliveries: list[Delivery[ev.EligibilityReviewRequested]], db: Database) -> None:
    async with db.begin() as conn:
        fresh = await first_deliveries(conn, inbox, CONSUMER, deliveries)
        if fresh:
            await conn.execute(insert(reviews).on_conflict_do_nothing(), [
                {"consultation_id": d.event.consultation_id, "receipt_no": d.event.receipt_no,
                 "reason": d.event.reason, "candidates": [c.model_dump() for c in d.event.candidates],
                 "requested_at": d.envelope.occurred_at} for d in fresh])
    for d in fresh:
        log.info("review kept: receipt=%s reason=%s candidates=%s", d.event.receipt_no, d.event.reason,
                 len(d.event.candidates))


@dataclass(frozen=True)
class ReviewView:
    consultation_id: uuid.UUID
    review: Row | None  # None: eligibility's reasons have not arrived yet
    task: Row | None  # None: the notifier's task has not arrived yet
    decision: Row | None
    notes: list[Row]


async def review_view(db: Database, consultation_id: uuid.UUID) -> ReviewView | None:
    async with db() as conn:
        review = (await conn.execute(select(reviews).where(reviews.c.consultation_id == consultation_id))).first()
        decision = (await conn.execute(
            select(review_decisions, operators.c.display_name.label("operator_name"))
            .join(operators, operators.c.id == review_decisions.c.operator_id)
            .where(review_decisions.c.consultation_id == consultation_id))).first()
    notes = await notes_of(db, consultation_id)
    task = await review_task(db, consultation_id)
    if review is None and task is None:
        return None
    return ReviewView(consultation_id, review, task, decision, notes)


async def decide(db: Database, consultation_id: uuid.UUID, operator: Operator, decision: str, reason: str,
                 note: str, now: datetime) -> ev.EligibilityDecided:
    """By the operator holding the consultation's open review task."""
    if reason not in DECISION_REASONS.get(decision, {}):
        raise ActionRefused("invalid_request", "判断と、その理由を一覧から選んでください。")
    note = note.strip()
    try:
        async with db.begin() as conn:
            task = (await conn.execute(
                update(tasks).where(tasks.c.consultation_id == consultation_id, tasks.c.kind == "review",
                                    tasks.c.status == "open", tasks.c.claimed_by == operator.id)
                .values(status="done", closed_at=now, closed_by=operator.id).returning(tasks))).first()
            if task is not None:
                event = ev.EligibilityDecided(
                    consultation_id=consultation_id, receipt_no=task.receipt_no, operator_id=operator.ref,
                    decision=decision, reason=reason, decided_at=now)
                await conn.execute(plain_insert(review_decisions).values(
                    consultation_id=consultation_id, task_id=task.task_id, operator_id=operator.id,
                    decision=decision, reason=reason, decided_at=now))
                if note:
                    await conn.execute(plain_insert(task_notes).values(
                        task_id=task.task_id, consultation_id=consultation_id, operator_id=operator.id, note=note,
                        written_at=now))
                await add_event(conn, outbox, event, consultation_id)
    except IntegrityError:  # decided already (under another review task of the same consultation)
        raise ActionRefused("already_decided") from None
    if task is None:
        raise await _refusal(db, consultation_id, operator)
    log.info("review decided: receipt=%s decision=%s reason=%s operator=%s", task.receipt_no, decision, reason,
             operator.id)
    return event


async def _refusal(db: Database, consultation_id: uuid.UUID, operator: Operator) -> ActionRefused:
    task = await review_task(db, consultation_id)
    if task is None:
        return ActionRefused("not_found")
    refusal = await why_not(db, task.task_id, operator, kind="review")
    return ActionRefused("already_decided") if refusal.code == "task_closed" else refusal
