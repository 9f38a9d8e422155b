"""Use cases: issue tasks for the desk's operators (call or write at the booked slot, review a
verdict, tell a consultant kindly that the desk cannot take the consultation).

A task needs the consultation copy (name, contact, summary). Events can arrive out of order, so
a task whose copy has not arrived yet waits in `pending` and is issued with the copy. Both
sides take the same per-consultation lock first, so neither can miss the other's commit.
"""
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.orm import consultations, inbox, outbox, pending, tasks
from shared import events as ev
from shared.db import Database
from shared.inbox import first_delivery
from shared.outbox import add_event

log = logging.getLogger("payhara.notifier")


@dataclass(frozen=True)
class TaskOrder:
    """What a task is about, before the consultation copy fills in who and how to reach them."""

    consultation_id: uuid.UUID
    kind: str
    booking_id: uuid.UUID | None = None
    reason: str | None = None
    due_starts_at: datetime | None = None
    due_ends_at: datetime | None = None


async def on_scheduled(event: ev.CallbackScheduled, envelope: ev.Envelope, sessions: Database) -> None:
    # kind "call" until the copy says the consultant asked for e-mail (see contact_kind)
    await _order(envelope, sessions, "notifier.scheduled", TaskOrder(
        event.consultation_id, "call", booking_id=event.booking_id,
        due_starts_at=event.slot_starts_at, due_ends_at=event.slot_ends_at,
    ))


async def on_review_requested(event: ev.EligibilityReviewRequested, envelope: ev.Envelope,
                              sessions: Database) -> None:
    await _order(envelope, sessions, "notifier.review", TaskOrder(event.consultation_id, "review", reason=event.reason))


async def on_rejected(event: ev.EligibilityRejected, envelope: ev.Envelope, sessions: Database) -> None:
    # No automated rejection mail: an operator tells the consultant, kindly, in person.
    await _order(envelope, sessions, "notifier.rejected", TaskOrder(event.consultation_id, "decline", reason=event.reason))


async def _order(envelope: ev.Envelope, sessions: Database, consumer: str, order: TaskOrder) -> None:
    async with sessions.begin() as session:
        if not await first_delivery(session, inbox, consumer, envelope.event_id):
            return
        await lock_consultation(session, order.consultation_id)
        copy = (await session.execute(
            select(consultations).where(consultations.c.consultation_id == order.consultation_id)
        )).first()
        if copy is None:
            await session.execute(insert(pending).values(**asdict(order)).on_conflict_do_nothing())
            log.info("%s task waits for the copy of consultation %s", order.kind, order.consultation_id)
            return
        await issue(session, copy, order)


async def lock_consultation(session: AsyncConnection, consultation_id: uuid.UUID) -> None:
    """Serialise, per consultation, the arrival of its copy with the tasks waiting for it."""
    key = func.hashtextextended(f"notifier.consultation:{consultation_id}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(key)))


async def issue_pending(session: AsyncConnection, copy) -> None:
    """Issue every task that waited for this copy; the caller holds lock_consultation."""
    waiting = (await session.execute(
        select(pending).where(pending.c.consultation_id == copy.consultation_id)
    )).all()
    for row in waiting:
        await issue(session, copy, TaskOrder(**row._asdict()))
    if waiting:
        await session.execute(delete(pending).where(pending.c.consultation_id == copy.consultation_id))


def contact_kind(contact_method: str) -> str:
    return "call" if contact_method == "phone" else "email"


async def issue(session: AsyncConnection, copy, order: TaskOrder) -> None:
    """One task per (consultation, kind) and per booking: a second order is a no-op."""
    kind = contact_kind(copy.contact_method) if order.booking_id else order.kind
    task_id = uuid.uuid4()
    inserted = await session.execute(
        insert(tasks).values(
            task_id=task_id, consultation_id=order.consultation_id, kind=kind, booking_id=order.booking_id,
            reason=order.reason, due_starts_at=order.due_starts_at, due_ends_at=order.due_ends_at,
        ).on_conflict_do_nothing().returning(tasks.c.task_id)
    )
    if inserted.first() is None:
        log.info("%s task for receipt %s already issued", kind, copy.receipt_no)
        return
    await add_event(session, outbox, ev.TaskIssued(
        task_id=task_id, consultation_id=order.consultation_id, receipt_no=copy.receipt_no, kind=kind,
        reason=order.reason, due_starts_at=order.due_starts_at, due_ends_at=order.due_ends_at,
        consultant_name=copy.consultant_name,
        contact=ev.Contact(method=copy.contact_method, phone=copy.phone, email=copy.email),
        category=copy.category, summary=copy.summary, urls=list(copy.urls),
    ), order.consultation_id)
    log.info("%s task %s issued for receipt %s", kind, task_id, copy.receipt_no)
