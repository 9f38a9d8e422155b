"""Use cases: an operator claims a task so that no one else works on it, and releases it.

Of operators clicking at once exactly one gets a task: the claim is one conditional UPDATE, and
PostgreSQL re-reads the row's claim after each waiting update, never count-then-write. A claim
lasts `console_claim_minutes`; left longer, another operator may take it over. Until someone
does, its holder still holds it (a long call does not lose its outcome). Each claim that succeeds
is also recorded in console.claims, in the same transaction, for the supervisors' figures."""
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import insert, or_, true, update
from sqlalchemy.engine import Row

from services.console.accounts import Operator
from services.console.orm import claims, tasks
from services.console.refused import ActionRefused
from services.console.task_view import japan_time
from services.console.tasks import find_task
from shared.db import Database

log = logging.getLogger("payhara.console")


async def claim(db: Database, task_id: uuid.UUID, operator: Operator, now: datetime, minutes: int) -> Row:
    """The task, now the operator's until `now + minutes` (a claim of one's own is extended)."""
    free = or_(tasks.c.claimed_by.is_(None), tasks.c.claimed_by == operator.id, tasks.c.claimed_until < now)
    async with db.begin() as conn:
        taken = (await conn.execute(
            update(tasks).where(tasks.c.task_id == task_id, tasks.c.status == "open", free)
            .values(claimed_by=operator.id, claimed_until=now + timedelta(minutes=minutes))
            .returning(tasks.c.task_id))).first()
        if taken is not None:
            await conn.execute(insert(claims).values(task_id=task_id, operator_id=operator.id, claimed_at=now))
    if taken is None:
        raise await why_not(db, task_id, operator)
    log.info("task %s claimed by operator %s for %s min", task_id, operator.id, minutes)
    return await find_task(db, task_id)


async def release(db: Database, task_id: uuid.UUID, operator: Operator) -> Row:
    """The task back in the queue for anyone; its holder releases it, or a supervisor does."""
    mine = true() if operator.is_supervisor else tasks.c.claimed_by == operator.id
    async with db.begin() as conn:
        released = (await conn.execute(
            update(tasks).where(tasks.c.task_id == task_id, tasks.c.status == "open",
                                tasks.c.claimed_by.is_not(None), mine)
            .values(claimed_by=None, claimed_until=None).returning(tasks.c.claimed_by))).first()
    if released is None:
        raise await why_not(db, task_id, operator)
    log.info("task %s released by operator %s", task_id, operator.id)
    return await find_task(db, task_id)


async def why_not(db: Database, task_id: uuid.UUID, operator: Operator, kind: str | None = None) -> ActionRefused:
    """Why an action on the task was refused, read after the conditional update found no row
    (a hint for the operator: the update alone decided)."""
    task = await find_task(db, task_id)
    if task is None:
        return ActionRefused("not_found")
    if task.status != "open":
        return ActionRefused("task_closed")
    if kind is not None and task.kind != kind:
        return ActionRefused("wrong_task_kind")
    if task.claimed_by is not None and task.claimed_by != operator.id:
        return ActionRefused("task_taken", f"このタスクは {task.holder_name} さんが対応中です"
                                           f"（{japan_time(task.claimed_until)} まで）。")
    if task.claimed_by is None:
        return ActionRefused("not_claimed")
    return ActionRefused("conflict")
