"""Use case: the operator holding a task that is neither a call nor a review marks it done, with
a short note of what was done (the reply sent, the consultant told, another way found): in one
transaction the task closes and the note is kept with the case (task_notes, never published or
logged). Calls close with their outcome (call_outcomes.py), reviews with a decision (reviews.py).
A second click finds the task closed and changes nothing."""
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, update

from services.console.accounts import Operator
from services.console.call_outcomes import MAX_NOTE
from services.console.claims import why_not
from services.console.orm import task_notes, tasks
from services.console.refused import ActionRefused
from services.console.tasks import find_task
from shared.db import Database

log = logging.getLogger("payhara.console")
# what "done" means for each kind, as the button's page says it
DONE_MEANS = {
    "email": "ご相談者にメールで返信した",
    "decline": "ご相談の対象にならないことを、ご相談者にお伝えした",
    "unreachable": "電話以外の方法で連絡した、または今後の対応を決めた",
    "unschedulable": "ご相談者と電話の日時を決めた、またはほかの方法で対応した",
    "bounced": "届かなかったメールの内容を、電話などほかの方法でお伝えした",
}
CLOSED_BY_DONE = tuple(DONE_MEANS)
NOTE_REQUIRED = "何をしたかを、メモに短く書いてください（必須）。"


@dataclass(frozen=True)
class Done:
    task_id: uuid.UUID
    receipt_no: str
    kind: str
    closed_at: datetime
    note_length: int


async def mark_done(db: Database, task_id: uuid.UUID, operator: Operator, note: str, now: datetime) -> Done:
    note = note.strip()
    if not note:
        raise ActionRefused("invalid_request", NOTE_REQUIRED)
    if len(note) > MAX_NOTE:
        raise ActionRefused("invalid_request", f"メモは{MAX_NOTE:,}文字以内で入力してください。")
    async with db.begin() as conn:
        task = (await conn.execute(
            update(tasks).where(tasks.c.task_id == task_id, tasks.c.status == "open",
                                tasks.c.kind.in_(CLOSED_BY_DONE), tasks.c.claimed_by == operator.id)
            .values(status="done", closed_at=now, closed_by=operator.id).returning(tasks))).first()
        if task is not None:
            await conn.execute(insert(task_notes).values(
                task_id=task_id, consultation_id=task.consultation_id, operator_id=operator.id, note=note,
                written_at=now))
    if task is None:
        raise await _refusal(db, task_id, operator)
    log.info("task done: receipt=%s task=%s kind=%s operator=%s note_length=%s",
             task.receipt_no, task_id, task.kind, operator.id, len(note))
    return Done(task_id, task.receipt_no, task.kind, now, len(note))


async def _refusal(db: Database, task_id: uuid.UUID, operator: Operator) -> ActionRefused:
    task = await find_task(db, task_id)
    if task is not None and task.status == "open" and task.kind not in CLOSED_BY_DONE:
        return ActionRefused("wrong_task_kind")
    return await why_not(db, task_id, operator)
