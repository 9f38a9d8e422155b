"""Use case: acknowledge a receipt by e-mail, never twice on redelivery (guarantee 4).

Why the record is committed around each send, on one connection that holds an advisory lock
across the sends:
- Sending inside one transaction that holds the notification row FOR UPDATE makes a concurrent
  duplicate wait for `sent`, but a crash between the send and the commit rolls the attempt back
  with everything else: the retry sends again and nobody can tell.
- Committing around the send makes that crash visible, but the row lock ends at the first
  commit: the same event handled at that moment by another instance (a redelivery, or an event
  the relay published twice) would see a mail handed over without an outcome, take it for a
  crash and send again.
So we keep both. Each mail's hand-over to SMTP is committed just before its own send and its
outcome (`sent` with its email_sent event, or "certainly not taken") as soon as the server
answers (handovers.HandoverRecord, in group commits), and the whole batch runs under a
session-level advisory lock per consultation. A concurrent duplicate waits for the lock and then
finds `sent`; a crash drops the connection and with it the lock, and a mail found under the lock
still `sending` with a hand-over on record is exactly the case to report. The window is one
mail wide per SMTP connection: only a mail in the server's hands at the crash, or whose `sent`
had not committed yet, is reported; the mails of the batch never handed over are not.
The machinery is the same for every kind of e-mail: once.py.

A receipt that is not urgent waits up to `receipt_hold_s` (5 s) from the consultation's
receipt for its first booking, which comes a moment after it when eligibility confirms at once:
it goes as the booking comes (booked.py), before a rejection (declining.py), or when its time is
up (watch_held); its notification row, `sending` and never handed over, is what holds it, so a
restart loses nothing. A first booking already known as the receipt is written is told in the
receipt itself: one mail rather than two (booked.tell_with_receipt; the acknowledgement also holds the
callback_booked locks, so the two never tell it both). A booking whose copy arrived late (the
task waited in `pending`) is otherwise told to the consultant right after the acknowledgement
(booked.py); a receipt seen for the first time with nothing
waiting has no booking yet, and asks nothing more.
"""
import asyncio
import logging
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier import booked, mail, once
from services.notifier.handovers import Mailing
from services.notifier.orm import consultations, inbox, notifications
from services.notifier.sending import Mailer
from services.notifier.tasks import issue_pending, lock_consultations
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.recovery import Backoff
from shared.settings import Settings

log = logging.getLogger("payhara.notifier")
CONSUMER = "notifier.received"
KIND = "acknowledgement"
HELD_BATCH = 128  # receipts whose time is up, sent together


async def acknowledge(deliveries: list[Delivery[ev.ConsultationReceived]], sessions: Database,
                      mailer: Mailer, settings: Settings) -> None:
    """Acknowledge a batch of receipts: one transaction decides what to send (and which receipts
    wait for their booking), then each mail's hand-over and outcome are recorded as it goes.
    Raises when a mail did not leave, after recording the others (SMTP away first, so the
    consumer pauses rather than dead-letters)."""
    firsts = {d.event.consultation_id: d.event for d in reversed(deliveries)}  # a copy per consultation
    async with once.exclusive(sessions, KIND, list(firsts), also=booked.KIND) as session:
        async with session.begin():  # the copies, waiting tasks, what to send
            copies, may_be_booked = await _keep_copies(session, list(firsts.values()))
            # no address: the operator's call is the acknowledgement
            await first_deliveries(session, inbox, CONSUMER, [d for d in deliveries if not _email_of(copies, d)])
            in_order = dict.fromkeys(d.event.consultation_id for d in deliveries)  # mails go out as receipts came
            mailings = await _receipts(session, [copies[cid] for cid in in_order if copies[cid].email], settings,
                                       hold=True, deliveries=deliveries)
        if mailings:
            await once.send(session, mailings, KIND, CONSUMER, mailer)
    await booked.tell_booked(sessions, mailer, settings, [cid for cid in may_be_booked if copies[cid].email])


async def send_held(sessions: Database, mailer: Mailer, settings: Settings,
                    consultation_ids: list[uuid.UUID] | None = None, now: datetime | None = None) -> int:
    """Send the receipts still waiting: of these consultations (their booking came, or their
    rejection), or, given none, those whose time is up. Each tells the first booking if it is
    known by now. Returns how many were due; raises like acknowledge."""
    now = now or datetime.now(timezone.utc)
    async with sessions() as look:  # without locks: the claim under them decides
        query = select(consultations).join(notifications, and_(
            notifications.c.consultation_id == consultations.c.consultation_id, notifications.c.kind == KIND,
            notifications.c.attempt == 1)).where(
            notifications.c.status == "sending", notifications.c.handed_over_at.is_(None),
            notifications.c.deferrals == 0, consultations.c.email.is_not(None))
        if consultation_ids is not None:
            query = query.where(consultations.c.consultation_id.in_(sorted(set(consultation_ids))))
        else:
            query = query.where(consultations.c.received_at <= now - timedelta(seconds=settings.receipt_hold_s))
        held = (await look.execute(query.order_by(consultations.c.received_at).limit(HELD_BATCH))).all()
    if not held:
        return 0
    async with once.exclusive(sessions, KIND, [c.consultation_id for c in held], also=booked.KIND) as session:
        async with session.begin():
            mailings = await _receipts(session, held, settings, hold=False, deliveries=[])
        if mailings:
            await once.send(session, mailings, KIND, CONSUMER, mailer)
    return len(held)


async def _receipts(session: AsyncConnection, copies: list, settings: Settings, hold: bool,
                    deliveries: list[Delivery]) -> list[Mailing]:
    """In the transaction under both kinds' locks: the receipts of these copies to send now, each
    telling its first booking when it is known; with `hold`, a receipt that is not urgent and has
    no booking yet waits (its row stays `sending`) until receipt_hold_s after the receipt."""
    now = datetime.now(timezone.utc)
    sending = await once.to_send(session, KIND, copies, settings.smtp_deferrals_before_task)
    bookings = await booked.tell_with_receipt(session, sending, now)
    if hold and settings.receipt_hold_s > 0:
        waits = timedelta(seconds=settings.receipt_hold_s)
        sending = [copy for copy in sending if copy.urgent or copy.consultation_id in bookings
                   or copy.received_at + waits <= now]
    desk = mail.Desk.of(settings)
    return [Mailing(copy, mail.acknowledgement(copy, desk, bookings.get(copy.consultation_id)),
                    [d for d in deliveries if d.event.consultation_id == copy.consultation_id],
                    also_told=(booked.KIND,) if copy.consultation_id in bookings else ())
            for copy in sending]


async def watch_held(sessions: Database, mailer: Mailer, settings: Settings) -> None:
    """The loop run alongside the notifier: the receipts whose time is up go, about every second
    (at once again while there were more than a batch). A database or SMTP server away is a
    delay: looked at again after a pause, never the end of the loop."""
    pause = Backoff(1.0, 30.0)
    while True:
        try:
            due = await send_held(sessions, mailer, settings)
            pause = Backoff(1.0, 30.0)
            await asyncio.sleep(0 if due >= HELD_BATCH else 1.0)
        except Exception as error:
            delay = pause.next_delay()
            log.warning("held receipts not sent (%s); trying again in %.0f s", type(error).__name__, delay)
            await asyncio.sleep(delay)


def _email_of(copies: dict, delivery: Delivery) -> str | None:
    return copies[delivery.event.consultation_id].email


async def _keep_copies(session: AsyncConnection, events: list[ev.ConsultationReceived]) -> tuple[dict, list]:
    """The copies by consultation id, and the consultations that may have a booking to tell: those
    whose waiting tasks the copy issued now, and those kept before (a redelivery may come after
    a crash that issued them but told nothing). A copy new in this transaction had no task yet."""
    ids = await lock_consultations(session, [e.consultation_id for e in events])
    new = set((await session.execute(insert(consultations).on_conflict_do_nothing().returning(
        consultations.c.consultation_id), [dict(
        consultation_id=e.consultation_id, receipt_no=e.receipt_no, consultant_name=e.consultant.name,
        contact_method=e.contact.method, phone=e.contact.phone, email=e.contact.email,
        category=e.category, summary=e.summary, urls=e.urls,
        received_at=e.received_at, contact_expected_from=e.contact_expected_from,
        contact_may_take_longer=e.contact_may_take_longer, urgent=e.urgent,
        name_kana=e.consultant.name_kana, role=e.consultant.role, member_no=e.consultant.member_no,
        institution_name=e.institution.name, institution_prefecture=e.institution.prefecture,
        manager_member_no=e.institution.manager_member_no, preferred_time=e.preferred_time,
        posts=[post.model_dump(mode="json") for post in e.posts],
    ) for e in events])).scalars())
    copies = {row.consultation_id: row for row in (await session.execute(
        select(consultations).where(consultations.c.consultation_id.in_(ids)))).all()}
    issued = await issue_pending(session, list(copies.values()))
    return copies, [cid for cid in ids if cid in issued or cid not in new]
