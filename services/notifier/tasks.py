"""Use cases: issue tasks for the desk's operators (call or write at the booked slot, one task
per attempt; review a verdict; tell a consultant kindly that the desk cannot take the
consultation; reach a consultant the calls did not reach; arrange a callback the scheduler
could not book; reach a consultant an e-mail could not reach, bounces.py).

A task needs the consultation copy (name, contact, summary). Events can arrive out of order, so
a task whose copy has not arrived yet waits in `pending` and is issued with the copy. Both
sides take the same per-consultation lock first, so neither can miss the other's commit.
"""
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.orm import consultations, inbox, outbox, pending, tasks
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events

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
    attempt: int = 1  # a call task's attempt of its booking, a bounced mail's attempt; else 1


# what a waiting order is made of (`pending` also keeps since when it waits: waiting.py)
ORDER_COLUMNS = [pending.c[name] for name in TaskOrder.__dataclass_fields__]


def scheduled_order(event: ev.CallbackScheduled) -> TaskOrder:
    # kind "call" until the copy says the consultant asked for e-mail (see contact_kind)
    return TaskOrder(event.consultation_id, "call", booking_id=event.booking_id, attempt=event.attempt,
                     due_starts_at=event.slot_starts_at, due_ends_at=event.slot_ends_at)


def review_order(event: ev.EligibilityReviewRequested) -> TaskOrder:
    return TaskOrder(event.consultation_id, "review", reason=event.reason)


def decline_order(event: ev.EligibilityRejected) -> TaskOrder:
    # a consultant who asked for a call (or whose copy is late) hears it from an operator, in
    # person; one who asked for e-mail gets the rejection mail instead (declining.py)
    return TaskOrder(event.consultation_id, "decline", reason=event.reason)


def unreachable_order(event: ev.CallbackExhausted) -> TaskOrder:
    # the calls did not reach the consultant, and there is no address to write to
    return TaskOrder(event.consultation_id, "unreachable", reason=event.reason)


def unschedulable_order(event: ev.CallbackUnschedulable) -> TaskOrder:
    return TaskOrder(event.consultation_id, "unschedulable", reason=event.reason)


async def order_tasks(deliveries: list[Delivery], sessions: Database, consumer: str,
                      order_of: Callable[[ev.Event], TaskOrder]) -> None:
    """Issue the tasks these events ask for; those whose copy has not arrived wait in `pending`."""
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, consumer, deliveries)
        await place_orders(session, [order_of(d.event) for d in fresh])


async def place_orders(session: AsyncConnection, orders: list[TaskOrder]) -> None:
    """In the caller's transaction: issue these tasks, or keep them waiting for their copy."""
    if not orders:
        return
    ids = await lock_consultations(session, [o.consultation_id for o in orders])
    copies = {row.consultation_id: row for row in (await session.execute(
        select(consultations).where(consultations.c.consultation_id.in_(ids)))).all()}
    waiting = [o for o in orders if o.consultation_id not in copies]
    if waiting:
        await session.execute(insert(pending).on_conflict_do_nothing(), [asdict(o) for o in waiting])
        for order in waiting:
            log.info("%s task waits for the copy of consultation %s", order.kind, order.consultation_id)
    await issue(session, [(copies[o.consultation_id], o) for o in orders if o.consultation_id in copies])


# unnest keeps the array's (sorted) order: every instance takes the locks in the same order
LOCK_CONSULTATIONS = text("""
SELECT pg_advisory_xact_lock(hashtextextended('notifier.consultation:' || id::text, 0))
FROM unnest(CAST(:ids AS uuid[])) AS id
""")


async def lock_consultations(session: AsyncConnection, consultation_ids) -> list[uuid.UUID]:
    """Serialise, per consultation, the arrival of its copy with the tasks waiting for it.
    Returns the ids, sorted and each once."""
    ids = sorted(set(consultation_ids))
    await session.execute(LOCK_CONSULTATIONS, {"ids": ids})
    return ids


async def issue_pending(session: AsyncConnection, copies: list) -> set[uuid.UUID]:
    """Issue every task that waited for these copies; the caller holds lock_consultations.
    Returns the consultations that had tasks waiting."""
    by_id = {copy.consultation_id: copy for copy in copies}
    waiting = (await session.execute(
        delete(pending).where(pending.c.consultation_id.in_(list(by_id))).returning(*ORDER_COLUMNS)
    )).all()
    await issue(session, [(by_id[row.consultation_id], TaskOrder(**row._asdict())) for row in waiting])
    return {row.consultation_id for row in waiting}


def consultation_details(copy) -> dict:
    """What the operator needs about the consultation, from the copy; a copy kept before the
    notifier kept these (notifier_0006) gives none of it, and the task says so."""
    institution = None
    if any(v is not None for v in (copy.institution_name, copy.institution_prefecture, copy.manager_member_no)):
        institution = ev.InstitutionInfo(name=copy.institution_name, prefecture=copy.institution_prefecture,
                                         manager_member_no=copy.manager_member_no)
    return dict(name_kana=copy.name_kana, role=copy.role, member_no=copy.member_no, institution=institution,
                preferred_time=copy.preferred_time, urgent=copy.urgent,
                posts=[ev.PostRef(**post) for post in copy.posts or []])


def contact_kind(contact_method: str) -> str:
    return "call" if contact_method == "phone" else "email"


async def issue(session: AsyncConnection, orders: list[tuple]) -> None:
    """One task per (consultation, kind, attempt) and per (booking, attempt): a second order is
    a no-op, and a booking's next attempt is a new call task."""
    if not orders:
        return
    rows = [dict(task_id=uuid.uuid4(), consultation_id=order.consultation_id, booking_id=order.booking_id,
                 kind=contact_kind(copy.contact_method) if order.kind == "call" else order.kind,
                 attempt=order.attempt, reason=order.reason, due_starts_at=order.due_starts_at,
                 due_ends_at=order.due_ends_at)
            for copy, order in orders]
    inserted = set((await session.execute(
        insert(tasks).on_conflict_do_nothing().returning(tasks.c.task_id), rows)).scalars())
    events = []
    for (copy, order), row in zip(orders, rows):
        if row["task_id"] not in inserted:
            log.info("%s task for receipt %s already issued", row["kind"], copy.receipt_no)
            continue
        events.append((ev.TaskIssued(
            task_id=row["task_id"], consultation_id=order.consultation_id, receipt_no=copy.receipt_no,
            kind=row["kind"], reason=order.reason, due_starts_at=order.due_starts_at, due_ends_at=order.due_ends_at,
            booking_id=order.booking_id, attempt=order.attempt, consultant_name=copy.consultant_name,
            contact=ev.Contact(method=copy.contact_method, phone=copy.phone, email=copy.email),
            category=copy.category, summary=copy.summary, urls=list(copy.urls),
            contact_expected_from=copy.contact_expected_from, **consultation_details(copy),
        ), order.consultation_id))
        log.info("%s task %s issued for receipt %s", row["kind"], row["task_id"], copy.receipt_no)
    await add_events(session, outbox, events)
