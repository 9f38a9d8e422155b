"""Use case: acknowledge a receipt by e-mail, never twice on redelivery (guarantee 4).

Why two transactions on one connection that holds an advisory lock across the send:
- Sending inside one transaction that holds the notification row FOR UPDATE makes a concurrent
  duplicate wait for `sent`, but a crash between the send and the commit rolls the attempt back
  with everything else: the retry sends again and nobody can tell.
- Two transactions (commit attempts + 1, send, commit `sent`) make that crash visible, but the
  row lock ends at the first commit: the same event handled at that moment by another instance
  (a redelivery, or an event the relay published twice) would see `sending` with attempts > 0,
  take it for a crash and send again.
So we keep both: the attempt is committed before the send, and the whole attempt, send
included, runs under a session-level advisory lock per consultation. A concurrent duplicate
waits for the lock and then finds `sent`; a crash drops the connection and with it the lock, and
`sending` with attempts > 0 found under the lock is exactly the case to report.
"""
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from prometheus_client import Counter
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier import mail
from services.notifier.orm import consultations, inbox, notifications, outbox
from services.notifier.sending import Mailer, MailNotSent
from services.notifier.tasks import issue_pending, lock_consultation
from shared import events as ev
from shared.db import Database
from shared.inbox import first_delivery
from shared.outbox import add_event
from shared.settings import Settings

log = logging.getLogger("payhara.notifier")
CONSUMER = "notifier.received"
KIND = "acknowledgement"
possible_duplicates = Counter(
    "payhara_possible_duplicate_emails",
    "E-mails sent again after an attempt whose outcome was never recorded (crash or lost connection)",
)


async def acknowledge(event: ev.ConsultationReceived, envelope: ev.Envelope, sessions: Database,
                      mailer: Mailer, settings: Settings) -> None:
    async with _exclusive(sessions, event.consultation_id) as session:
        async with session.begin():  # tx A: the copy, waiting tasks, the attempt
            copy = await _keep_copy(session, event)
            if not copy.email:  # no address: the operator's call is the acknowledgement
                await first_delivery(session, inbox, CONSUMER, envelope.event_id)
                return
            if not await _begin_attempt(session, copy):
                return
        message = mail.acknowledgement(copy, settings.mail_from)
        try:
            await mailer.send(message)
        except MailNotSent:
            async with session.begin():  # certainly not sent: the retry is no duplicate
                await session.execute(_this(update(notifications), copy).values(attempts=notifications.c.attempts - 1))
            raise
        async with session.begin():  # tx B: record the outcome
            await session.execute(_this(update(notifications), copy).values(
                status="sent", sent_at=datetime.now(timezone.utc), message_id=message["Message-ID"]))
            await add_event(session, outbox, ev.EmailSent(
                consultation_id=copy.consultation_id, receipt_no=copy.receipt_no, kind=KIND,
                message_id=message["Message-ID"]), copy.consultation_id)
            await first_delivery(session, inbox, CONSUMER, envelope.event_id)
    log.info("acknowledgement e-mail sent: receipt=%s", copy.receipt_no)


async def _keep_copy(session: AsyncConnection, event: ev.ConsultationReceived):
    await lock_consultation(session, event.consultation_id)
    await session.execute(insert(consultations).values(
        consultation_id=event.consultation_id, receipt_no=event.receipt_no, consultant_name=event.consultant.name,
        contact_method=event.contact.method, phone=event.contact.phone, email=event.contact.email,
        category=event.category, summary=event.summary, urls=event.urls,
        received_at=event.received_at, contact_expected_from=event.contact_expected_from,
    ).on_conflict_do_nothing())
    copy = (await session.execute(
        select(consultations).where(consultations.c.consultation_id == event.consultation_id))).one()
    await issue_pending(session, copy)
    return copy


async def _begin_attempt(session: AsyncConnection, copy) -> bool:
    """Record one more attempt, committed before the send; False when already sent."""
    await session.execute(insert(notifications).values(
        consultation_id=copy.consultation_id, kind=KIND, status="sending").on_conflict_do_nothing())
    row = (await session.execute(_this(select(notifications), copy).with_for_update())).one()
    if row.status == "sent":
        log.info("acknowledgement for receipt %s already sent: redelivery skipped", copy.receipt_no)
        return False
    if row.attempts > 0:
        log.warning("possible duplicate acknowledgement e-mail: receipt=%s attempt=%d "
                    "(an earlier attempt ended without recording its outcome)", copy.receipt_no, row.attempts + 1)
        possible_duplicates.inc()
    await session.execute(_this(update(notifications), copy).values(attempts=notifications.c.attempts + 1))
    return True


def _this(statement, copy):
    return statement.where(notifications.c.consultation_id == copy.consultation_id, notifications.c.kind == KIND)


@asynccontextmanager
async def _exclusive(sessions: Database, consultation_id: uuid.UUID) -> AsyncIterator[AsyncConnection]:
    """A session on one connection holding this consultation's acknowledgement lock throughout."""
    key = func.hashtextextended(f"notifier.acknowledgement:{consultation_id}", 0)
    async with sessions.engine.connect() as connection:
        await connection.execute(select(func.pg_advisory_lock(key)))
        await connection.commit()
        try:
            yield connection
        finally:
            try:
                await connection.execute(select(func.pg_advisory_unlock(key)))
                await connection.commit()
            except BaseException:
                await connection.invalidate()  # never pool a connection that may still hold the lock
                raise
