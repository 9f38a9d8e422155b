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
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier import mail
from services.notifier.orm import consultations, inbox, notifications, outbox
from services.notifier.sending import Mailer, MailNotSent
from services.notifier.tasks import issue_pending, lock_consultations
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events
from shared.settings import Settings

log = logging.getLogger("payhara.notifier")
CONSUMER = "notifier.received"
KIND = "acknowledgement"
possible_duplicates = Counter(
    "payhara_possible_duplicate_emails",
    "E-mails sent again after an attempt whose outcome was never recorded (crash or lost connection)",
)


async def acknowledge(deliveries: list[Delivery[ev.ConsultationReceived]], sessions: Database,
                      mailer: Mailer, settings: Settings) -> None:
    """Acknowledge a batch of receipts: one attempt transaction, the sends over one SMTP
    connection, one outcome transaction. Raises when a mail did not leave, after recording the
    others, so the consumer retries those deliveries on their own."""
    firsts = {d.event.consultation_id: d.event for d in reversed(deliveries)}  # a copy per consultation
    async with _exclusive(sessions, list(firsts)) as session:
        async with session.begin():  # tx A: the copies, waiting tasks, the attempts
            copies = await _keep_copies(session, list(firsts.values()))
            # no address: the operator's call is the acknowledgement
            await first_deliveries(session, inbox, CONSUMER, [d for d in deliveries if not _email_of(copies, d)])
            sending = await _begin_attempts(session, [c for c in copies.values() if c.email])
        messages = [mail.acknowledgement(copy, settings.mail_from) for copy in sending]
        outcomes = await mailer.send_all(messages) if messages else []
        sent = [(c, m) for c, m, failure in zip(sending, messages, outcomes) if failure is None]
        refused = [c for c, failure in zip(sending, outcomes) if isinstance(failure, MailNotSent)]
        async with session.begin():  # tx B: record the outcomes
            await _record_sent(session, sent, [d for d in deliveries if d.event.consultation_id in
                                               {c.consultation_id for c, _ in sent}])
            if refused:  # certainly not sent: the retry is no duplicate
                await session.execute(_this(update(notifications)).values(attempts=notifications.c.attempts - 1),
                                      [{"b_id": c.consultation_id} for c in refused])
    for copy, _ in sent:
        log.info("acknowledgement e-mail sent: receipt=%s", copy.receipt_no)
    failures = [failure for failure in outcomes if failure is not None]
    if failures:
        raise failures[0]


def _email_of(copies: dict, delivery: Delivery) -> str | None:
    return copies[delivery.event.consultation_id].email


async def _keep_copies(session: AsyncConnection, events: list[ev.ConsultationReceived]) -> dict:
    ids = await lock_consultations(session, [e.consultation_id for e in events])
    await session.execute(insert(consultations).on_conflict_do_nothing(), [dict(
        consultation_id=e.consultation_id, receipt_no=e.receipt_no, consultant_name=e.consultant.name,
        contact_method=e.contact.method, phone=e.contact.phone, email=e.contact.email,
        category=e.category, summary=e.summary, urls=e.urls,
        received_at=e.received_at, contact_expected_from=e.contact_expected_from,
    ) for e in events])
    copies = {row.consultation_id: row for row in (await session.execute(
        select(consultations).where(consultations.c.consultation_id.in_(ids)))).all()}
    await issue_pending(session, list(copies.values()))
    return copies


async def _begin_attempts(session: AsyncConnection, copies: list) -> list:
    """Record one more attempt for each copy not yet acknowledged, committed before the send;
    returns those copies."""
    if not copies:
        return []
    await session.execute(insert(notifications).on_conflict_do_nothing(), [
        {"consultation_id": c.consultation_id, "kind": KIND, "status": "sending"} for c in copies])
    rows = {row.consultation_id: row for row in (await session.execute(
        select(notifications).where(notifications.c.kind == KIND,
                                    notifications.c.consultation_id.in_([c.consultation_id for c in copies]))
        .order_by(notifications.c.consultation_id).with_for_update())).all()}
    sending = []
    for copy in copies:
        row = rows[copy.consultation_id]
        if row.status == "sent":
            log.info("acknowledgement for receipt %s already sent: redelivery skipped", copy.receipt_no)
            continue
        if row.attempts > 0:
            log.warning("possible duplicate acknowledgement e-mail: receipt=%s attempt=%d "
                        "(an earlier attempt ended without recording its outcome)", copy.receipt_no, row.attempts + 1)
            possible_duplicates.inc()
        sending.append(copy)
    if sending:
        await session.execute(_this(update(notifications)).values(attempts=notifications.c.attempts + 1),
                              [{"b_id": c.consultation_id} for c in sending])
    return sending


async def _record_sent(session: AsyncConnection, sent: list, deliveries: list[Delivery]) -> None:
    if not sent:
        return
    now = datetime.now(timezone.utc)
    await session.execute(_this(update(notifications)).values(
        status="sent", sent_at=now, message_id=bindparam("b_message_id")),
        [{"b_id": c.consultation_id, "b_message_id": m["Message-ID"]} for c, m in sent])
    await add_events(session, outbox, [(ev.EmailSent(
        consultation_id=c.consultation_id, receipt_no=c.receipt_no, kind=KIND, message_id=m["Message-ID"],
    ), c.consultation_id) for c, m in sent])
    await first_deliveries(session, inbox, CONSUMER, deliveries)


def _this(statement):
    return statement.where(notifications.c.consultation_id == bindparam("b_id"), notifications.c.kind == KIND)


# unnest keeps the array's (sorted) order: every instance takes the locks in the same order
LOCK_ACKNOWLEDGEMENTS = text("""
SELECT pg_advisory_lock(hashtextextended('notifier.acknowledgement:' || id::text, 0))
FROM unnest(CAST(:ids AS uuid[])) AS id
""")


@asynccontextmanager
async def _exclusive(sessions: Database, consultation_ids: list[uuid.UUID]) -> AsyncIterator[AsyncConnection]:
    """A session on one connection holding these consultations' acknowledgement locks throughout."""
    async with sessions.engine.connect() as connection:
        await connection.execute(LOCK_ACKNOWLEDGEMENTS, {"ids": sorted(set(consultation_ids))})
        await connection.commit()
        try:
            yield connection
        finally:
            try:
                await connection.execute(text("SELECT pg_advisory_unlock_all()"))
                await connection.commit()
            except BaseException:
                await connection.invalidate()  # never pool a connection that may still hold the locks
                raise
