"""Use cases of the operators' task view: keep each issued task once, list the open ones (with
who holds each), find one."""
import logging
import uuid
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row

from services.console.orm import inbox, operators, tasks
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery

log = logging.getLogger("payhara.console")
CONSUMER = "console.task"


async def record_tasks(deliveries: list[Delivery[ev.TaskIssued]], sessions: Database) -> int:
    """Keep the tasks for the operators; returns how many this batch added. A redelivered event
    (inbox) and the same task in a new event (primary key) both change nothing."""
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, deliveries)
        if not fresh:
            return 0
        added = set((await session.execute(
            insert(tasks).on_conflict_do_nothing(index_elements=[tasks.c.task_id]).returning(tasks.c.task_id),
            [_row(d.event, d.envelope) for d in fresh],
        )).scalars())
    for d in fresh:
        log.info("task %s: receipt=%s task=%s kind=%s event=%s",
                 "recorded" if d.event.task_id in added else "already known",
                 d.event.receipt_no, d.event.task_id, d.event.kind, d.envelope.event_id)
    return len(added)


def _row(event: ev.TaskIssued, envelope: ev.Envelope) -> dict:
    return dict(
        task_id=event.task_id, consultation_id=event.consultation_id, receipt_no=event.receipt_no,
        kind=event.kind, reason=event.reason, due_starts_at=event.due_starts_at, due_ends_at=event.due_ends_at,
        consultant_name=event.consultant_name, contact_method=event.contact.method,
        phone=event.contact.phone, email=event.contact.email,
        category=event.category, summary=event.summary, urls=event.urls, issued_at=envelope.occurred_at,
        booking_id=event.booking_id, attempt=event.attempt, contact_expected_from=event.contact_expected_from,
        **_details(event),
    )


def _details(event: ev.TaskIssued) -> dict:
    """The consultation's details; a task issued without them (role is always given when they
    are) keeps NULL, and its page says 「（記録なし）」 rather than guessing."""
    if event.role is None:  # every batch row carries the same columns
        return dict.fromkeys(("name_kana", "role", "member_no", "institution_name", "institution_prefecture",
                              "manager_member_no", "preferred_time", "urgent", "posts"))
    institution = event.institution or ev.InstitutionInfo()
    return dict(name_kana=event.name_kana, role=event.role, member_no=event.member_no,
                institution_name=institution.name, institution_prefecture=institution.prefecture,
                manager_member_no=institution.manager_member_no, preferred_time=event.preferred_time,
                urgent=event.urgent, posts=[post.model_dump(mode="json") for post in event.posts])


def _with_holder():
    """Tasks with the display name of the operator who holds each (None when nobody does)."""
    return select(tasks, operators.c.display_name.label("holder_name")).outerjoin(
        operators, operators.c.id == tasks.c.claimed_by)


async def open_tasks(sessions: Database, due_before: datetime | None = None,
                     due_from: datetime | None = None) -> list[Row]:
    """Open tasks, the most urgent first: by due time (tasks without one last), then by issue time.
    `due_before`: only those due before it, and those without a due time; `due_from`: only those
    due at it or later."""
    query = _with_holder().where(tasks.c.status == "open")
    if due_before is not None:
        query = query.where(or_(tasks.c.due_starts_at.is_(None), tasks.c.due_starts_at < due_before))
    if due_from is not None:
        query = query.where(tasks.c.due_starts_at >= due_from)
    async with sessions() as session:
        result = await session.execute(
            query.order_by(tasks.c.due_starts_at.asc().nulls_last(), tasks.c.issued_at.asc(), tasks.c.task_id))
        return list(result.all())


async def find_task(sessions: Database, task_id: uuid.UUID) -> Row | None:
    async with sessions() as session:
        return (await session.execute(_with_holder().where(tasks.c.task_id == task_id))).first()


async def review_task(sessions: Database, consultation_id: uuid.UUID) -> Row | None:
    """The consultation's review task: the open one if there is one, else the latest."""
    async with sessions() as session:
        return (await session.execute(
            _with_holder().where(tasks.c.consultation_id == consultation_id, tasks.c.kind == "review")
            .order_by((tasks.c.status == "open").desc(), tasks.c.issued_at.desc()).limit(1))).first()
