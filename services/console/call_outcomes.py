"""Use case: the operator holding a call task records how the call went. In one transaction the
task closes, the outcome is kept (one per task), the note stays in the console, and
call.outcome_recorded.v1 waits in the outbox for the scheduler, carrying the note's length only.
A second click finds the task closed and changes nothing."""
import logging
import uuid
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from services.console.accounts import Operator
from services.console.claims import why_not
from services.console.orm import call_outcomes, outbox, task_notes, tasks
from services.console.refused import ActionRefused
from shared import events as ev
from shared.db import Database
from shared.outbox import add_event

log = logging.getLogger("payhara.console")
OUTCOME_LABELS = {"reached": "つながった（ご相談をうかがった）", "no_answer": "出なかった（かけ直す）",
                  "wrong_number": "番号が違った・使われていない"}
MAX_NOTE = 2000


async def record_outcome(db: Database, task_id: uuid.UUID, operator: Operator, outcome: ev.CallOutcome,
                         note: str, now: datetime) -> ev.CallOutcomeRecorded:
    note = note.strip()
    try:
        async with db.begin() as conn:
            task = (await conn.execute(
                update(tasks).where(tasks.c.task_id == task_id, tasks.c.status == "open", tasks.c.kind == "call",
                                    tasks.c.claimed_by == operator.id, tasks.c.booking_id.is_not(None))
                .values(status="done", closed_at=now, closed_by=operator.id).returning(tasks))).first()
            if task is not None:
                event = _event(task, outcome, operator, len(note), now)
                await conn.execute(insert(call_outcomes).values(
                    task_id=task_id, consultation_id=task.consultation_id, receipt_no=task.receipt_no,
                    booking_id=task.booking_id, attempt=task.attempt, outcome=outcome, operator_id=operator.id,
                    recorded_at=now))
                if note:
                    await conn.execute(insert(task_notes).values(
                        task_id=task_id, consultation_id=task.consultation_id, operator_id=operator.id, note=note,
                        written_at=now))
                await add_event(conn, outbox, event, task.consultation_id)
    except IntegrityError:  # the outcome recorded already: the unique task behind the update
        raise ActionRefused("task_closed") from None
    if task is None:
        raise await _refusal(db, task_id, operator)
    log.info("call outcome recorded: receipt=%s task=%s attempt=%s outcome=%s operator=%s note_length=%s",
             event.receipt_no, task_id, event.attempt, outcome, operator.id, event.note_length)
    return event


def _event(task, outcome: ev.CallOutcome, operator: Operator, note_length: int,
           now: datetime) -> ev.CallOutcomeRecorded:
    return ev.CallOutcomeRecorded(
        consultation_id=task.consultation_id, receipt_no=task.receipt_no, booking_id=task.booking_id,
        attempt=task.attempt, outcome=outcome, operator_id=operator.ref, note_length=note_length, recorded_at=now)


async def _refusal(db: Database, task_id: uuid.UUID, operator: Operator) -> ActionRefused:
    refusal = await why_not(db, task_id, operator, kind="call")
    if refusal.code == "conflict":  # open, a call, the operator's own: only the booking is missing
        return ActionRefused("no_booking")
    return refusal
