"""What operators wrote about a consultation, with who wrote it and when: for the next operator
on the case, shown on its task pages only (never published, never logged)."""
import uuid

from sqlalchemy import select
from sqlalchemy.engine import Row

from services.console.orm import call_outcomes, operators, task_notes
from shared.db import Database


async def notes_of(db: Database, consultation_id: uuid.UUID) -> list[Row]:
    async with db() as conn:
        return list((await conn.execute(
            select(task_notes.c.task_id, task_notes.c.note, task_notes.c.written_at,
                   operators.c.display_name.label("operator_name"))
            .join(operators, operators.c.id == task_notes.c.operator_id)
            .where(task_notes.c.consultation_id == consultation_id).order_by(task_notes.c.written_at))).all())


async def outcome_of(db: Database, task_id: uuid.UUID) -> Row | None:
    """A call task's recorded outcome, with who recorded it."""
    async with db() as conn:
        return (await conn.execute(
            select(call_outcomes, operators.c.display_name.label("operator_name"))
            .join(operators, operators.c.id == call_outcomes.c.operator_id)
            .where(call_outcomes.c.task_id == task_id))).first()
