"""Use case: a callback was booked (callback.scheduled.v1, one per attempt). An operator gets the
call task, or the e-mail task, as before (tasks.py); a consultant who gave an e-mail address is
also told when: the day and time window of the call on the Japan clock, or the day a reply by
e-mail is due; from the second attempt on, that the desk tried to call and will try again then.
Once per consultation and attempt, sent like the acknowledgement (once.py).

What to tell is read from the issued tasks, not from the event, so one rule serves both orders of
arrival: a booking whose consultation copy came late is issued when the copy comes
(tasks.issue_pending), and acknowledging.py then asks `tell_booked` about those consultations.
Only a consultation's latest attempt is told, and never once its slot has ended: a mail about a
call already past would only confuse. A first reply by e-mail due on the promised day is not
told: the acknowledgement said so already. A first booking already known when the receipt is
written is told in the receipt (tell_with_receipt, called by acknowledging.py): one mail; a
receipt held for its booking (receipt_hold_s) goes as the booking comes, telling it.
"""
import uuid
from datetime import datetime, timezone

from sqlalchemy import and_, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from services.notifier import mail, once
from services.notifier.handovers import Mailing
from services.notifier.orm import consultations, notifications, tasks
from services.notifier.sending import Mailer
from services.notifier.tasks import order_tasks, scheduled_order
from shared import events as ev
from shared.calendar import japan_date
from shared.db import Database
from shared.messaging import Delivery
from shared.settings import Settings

CONSUMER = "notifier.scheduled"
KIND = "callback_booked"
BOOKED = ("call", "email")  # the task kinds of a booking: a call, or a reply by e-mail


async def booked(deliveries: list[Delivery[ev.CallbackScheduled]], sessions: Database, mailer: Mailer,
                 settings: Settings) -> None:
    """Issue each booking's task (or keep it waiting for its copy), then tell the consultants.
    Raises when a mail did not leave, after recording the rest: the tasks are not issued twice."""
    await order_tasks(deliveries, sessions, CONSUMER, scheduled_order)
    # a receipt waiting for its first booking goes now, telling it: one mail rather than two
    from services.notifier.acknowledging import send_held  # here: acknowledging imports this module
    ids = [d.event.consultation_id for d in deliveries]
    await send_held(sessions, mailer, settings, ids)
    await tell_booked(sessions, mailer, settings, ids)


async def tell_booked(sessions: Database, mailer: Mailer, settings: Settings,
                      consultation_ids: list[uuid.UUID], now: datetime | None = None) -> None:
    """Send the booked-callback mails these consultations are due, if any."""
    async with sessions() as look:  # without locks: most batches find nothing; once.to_send decides under them
        due = await _untold(look, sorted(set(consultation_ids)), now or datetime.now(timezone.utc))
    if not due:
        return
    async with once.exclusive(sessions, KIND, list(due)) as session:
        async with session.begin():
            sending = await once.to_send(session, KIND, list(due.values()), settings.smtp_deferrals_before_task,
                                         attempts={cid: row.booked_attempt for cid, row in due.items()})
        desk = mail.Desk.of(settings)
        mailings = [Mailing(row, mail.callback_booked(row, _booking(row), desk), [], attempt=row.booked_attempt)
                    for row in sending]
        if mailings:
            await once.send(session, mailings, KIND, CONSUMER, mailer)


async def tell_with_receipt(session: AsyncConnection, copies: list, now: datetime) -> dict[uuid.UUID, mail.Booking]:
    """In the acknowledgement's transaction, under its locks and this kind's: the first bookings
    already known for these copies, claimed (their notification row, `sending`) so that the
    receipt tells them and no second mail does; HandoverRecord marks them sent with the receipt.
    A claim whose receipt does not go stays `sending`: the receipt's retry claims it again, or
    the booking is told on its own."""
    due = await _untold(session, sorted(c.consultation_id for c in copies), now)
    first = [row for row in due.values() if row.booked_attempt == 1]
    if not first:
        return {}
    ids = [row.consultation_id for row in first]
    await session.execute(insert(notifications).on_conflict_do_nothing(), [
        {"consultation_id": cid, "kind": KIND, "attempt": 1, "status": "sending"} for cid in ids])
    # under this kind's locks nobody else is sending it: a row still `sending` and never handed
    # over (a receipt that did not go, a mail that could not) is free to tell now
    claimed = set((await session.execute(select(notifications.c.consultation_id).where(
        notifications.c.kind == KIND, notifications.c.attempt == 1, notifications.c.consultation_id.in_(ids),
        notifications.c.status == "sending", notifications.c.handed_over_at.is_(None)))).scalars())
    return {row.consultation_id: _booking(row) for row in first if row.consultation_id in claimed}


async def _untold(connection: AsyncConnection, ids: list[uuid.UUID], now: datetime) -> dict:
    """consultation id -> its copy with its latest booking (task kind, attempt, slot), for those
    with an address whose latest booking is still ahead and not told yet."""
    if not ids:
        return {}
    later = aliased(tasks)
    told = notifications
    query = (
        select(consultations, tasks.c.kind.label("task_kind"), tasks.c.attempt.label("booked_attempt"),
               tasks.c.due_starts_at, tasks.c.due_ends_at)
        .join(tasks, tasks.c.consultation_id == consultations.c.consultation_id)
        .where(consultations.c.consultation_id.in_(ids), consultations.c.email.is_not(None),
               tasks.c.kind.in_(BOOKED), tasks.c.due_ends_at > now,
               ~exists().where(later.c.consultation_id == tasks.c.consultation_id, later.c.kind.in_(BOOKED),
                               later.c.attempt > tasks.c.attempt),
               ~exists().where(and_(told.c.consultation_id == tasks.c.consultation_id, told.c.kind == KIND,
                                    told.c.attempt == tasks.c.attempt, told.c.status != "sending")))
        .order_by(consultations.c.consultation_id))
    return {row.consultation_id: row for row in (await connection.execute(query)).all() if says_something_new(row)}


def says_something_new(row) -> bool:
    """A first reply by e-mail due on the day the acknowledgement promised adds nothing to it: no
    mail. A call's time window, a later day, or a next attempt is news."""
    return not (row.task_kind == "email" and row.booked_attempt == 1
                and japan_date(row.due_starts_at) <= row.contact_expected_from)


def _booking(row) -> mail.Booking:
    return mail.Booking(row.due_starts_at, row.due_ends_at, attempt=row.booked_attempt,
                        by_email=row.task_kind == "email")
