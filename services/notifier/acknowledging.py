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
"""
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier import mail
from services.notifier.handovers import HandoverRecord, Mailing
from services.notifier.orm import consultations, inbox, notifications, possible_duplicates
from services.notifier.sending import Mailer
from services.notifier.tasks import issue_pending, lock_consultations
from shared import events as ev
from shared.db import Database
from shared.failures import DependencyDown
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.settings import Settings

log = logging.getLogger("payhara.notifier")
CONSUMER = "notifier.received"
KIND = "acknowledgement"
duplicates_reported = Counter(
    "payhara_possible_duplicate_emails",
    "E-mails sent again after a hand-over whose outcome was never recorded (crash or lost connection)",
)


async def acknowledge(deliveries: list[Delivery[ev.ConsultationReceived]], sessions: Database,
                      mailer: Mailer, settings: Settings) -> None:
    """Acknowledge a batch of receipts: one transaction decides what to send, then each mail's
    hand-over and outcome are recorded as it goes. Raises when a mail did not leave, after
    recording the others (SMTP away first, so the consumer pauses rather than dead-letters)."""
    firsts = {d.event.consultation_id: d.event for d in reversed(deliveries)}  # a copy per consultation
    async with _exclusive(sessions, list(firsts)) as session:
        async with session.begin():  # the copies, waiting tasks, what to send
            copies = await _keep_copies(session, list(firsts.values()))
            # no address: the operator's call is the acknowledgement
            await first_deliveries(session, inbox, CONSUMER, [d for d in deliveries if not _email_of(copies, d)])
            in_order = dict.fromkeys(d.event.consultation_id for d in deliveries)  # mails go out as receipts came
            sending = await _to_send(session, [copies[cid] for cid in in_order if copies[cid].email])
        mailings = [Mailing(copy, mail.acknowledgement(copy, settings.mail_from),
                            [d for d in deliveries if d.event.consultation_id == copy.consultation_id])
                    for copy in sending]
        if not mailings:
            return
        async with HandoverRecord(session, mailings, KIND, CONSUMER) as record:
            outcomes = await mailer.send_all([m.message for m in mailings], record)
    failures = [failure for failure in outcomes if failure is not None]
    if failures:
        raise next((f for f in failures if isinstance(f, DependencyDown)), failures[0])


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


async def _to_send(session: AsyncConnection, copies: list) -> list:
    """The copies not acknowledged yet; those handed over before without an outcome are reported
    here, in the transaction that decides to send them again."""
    if not copies:
        return []
    await session.execute(insert(notifications).on_conflict_do_nothing(), [
        {"consultation_id": c.consultation_id, "kind": KIND, "status": "sending"} for c in copies])
    rows = {row.consultation_id: row for row in (await session.execute(
        select(notifications).where(notifications.c.kind == KIND,
                                    notifications.c.consultation_id.in_([c.consultation_id for c in copies]))
        .order_by(notifications.c.consultation_id).with_for_update())).all()}
    sending, again = [], []
    for copy in copies:
        row = rows[copy.consultation_id]
        if row.status == "sent":
            log.info("acknowledgement for receipt %s already sent: redelivery skipped", copy.receipt_no)
            continue
        if row.handed_over_at is not None:
            again.append((copy, row))
        sending.append(copy)
    await _report_possible_duplicates(session, again)
    return sending


async def _report_possible_duplicates(session: AsyncConnection, again: list) -> None:
    """On record once per hand-over: the hand-over moves to possible_duplicates."""
    if not again:
        return
    await session.execute(insert(possible_duplicates), [dict(
        consultation_id=copy.consultation_id, kind=KIND, receipt_no=copy.receipt_no,
        message_id=mail.message_id(KIND, copy.consultation_id), handed_over_at=row.handed_over_at,
    ) for copy, row in again])
    await session.execute(update(notifications).where(
        notifications.c.kind == KIND, notifications.c.consultation_id.in_([c.consultation_id for c, _ in again]),
    ).values(handed_over_at=None))
    duplicates_reported.inc(len(again))
    for copy, row in again:
        log.warning("possible duplicate acknowledgement e-mail: receipt=%s consultation=%s (handed to SMTP "
                    "at %s, outcome never recorded): sending again", copy.receipt_no, copy.consultation_id,
                    row.handed_over_at.isoformat())


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
