"""An e-mail of one kind sent once per consultation and attempt (guarantee 4), whatever the
kind: the acknowledgement of a receipt, the booked callback (one per attempt), the rejection,
the fallback after calls that did not reach the consultant.

The notification row (unique per consultation, kind and attempt) moves `sending -> sent`, or
`-> failed` when the mail will never go (bounces.py: an operator's task instead); each mail's
hand-over and outcome are recorded as it goes (handovers.HandoverRecord), and the whole batch
runs under a session-level advisory lock per (kind, consultation). Why all three:
acknowledging.py's docstring.
"""
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter
from sqlalchemy import select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier import mail
from services.notifier.bounces import Bounce, give_up
from services.notifier.handovers import HandoverRecord, Mailing
from services.notifier.orm import notifications, possible_duplicates
from services.notifier.sending import MailBounced, Mailer
from shared.db import Database
from shared.failures import DependencyDown

log = logging.getLogger("payhara.notifier")
duplicates_reported = Counter(
    "payhara_possible_duplicate_emails",
    "E-mails sent again after a hand-over whose outcome was never recorded (crash or lost connection)",
)

# unnest keeps the array's (sorted) order: every instance takes the locks in the same order
LOCK_MAILS = text("""
SELECT pg_advisory_lock(hashtextextended(CAST(:prefix AS text) || id::text, 0))
FROM unnest(CAST(:ids AS uuid[])) AS id
""")


@asynccontextmanager
async def exclusive(sessions: Database, kind: str, consultation_ids: list[uuid.UUID], also: str | None = None
                    ) -> AsyncIterator[AsyncConnection]:
    """A session on one connection holding these consultations' locks for `kind` throughout (and
    for the kind `also`, taken after them: the acknowledgement may tell the booked callback)."""
    async with sessions.engine.connect() as connection:
        for prefix in (kind, also) if also else (kind,):
            await connection.execute(LOCK_MAILS, {"prefix": f"notifier.{prefix}:", "ids": sorted(set(consultation_ids))})
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


async def to_send(session: AsyncConnection, kind: str, copies: list, deferrals_allowed: int,
                  attempts: dict[uuid.UUID, int] | None = None) -> list:
    """The copies whose mail of `kind` (at its attempt, 1 unless `attempts` says) is not sent
    yet; those handed over before without an outcome are reported here, in the transaction that
    decides to send them again; those deferred `deferrals_allowed` times are given up."""
    if not copies:
        return []
    attempt = (attempts or {}).get
    keys = [(c.consultation_id, attempt(c.consultation_id, 1)) for c in copies]
    await session.execute(insert(notifications).on_conflict_do_nothing(), [
        {"consultation_id": cid, "kind": kind, "attempt": n, "status": "sending"} for cid, n in keys])
    rows = {row.consultation_id: row for row in (await session.execute(
        select(notifications).where(notifications.c.kind == kind,
                                    tuple_(notifications.c.consultation_id, notifications.c.attempt).in_(keys))
        .order_by(notifications.c.consultation_id).with_for_update())).all()}
    sending, again, deferred_too_often = [], [], []
    for copy in copies:
        row = rows[copy.consultation_id]
        if row.status != "sending":
            log.info("%s for receipt %s already %s: redelivery skipped", kind, copy.receipt_no, row.status)
            continue
        if row.deferrals >= deferrals_allowed:
            deferred_too_often.append(Bounce(copy, row.attempt, f"{row.failure}, {row.deferrals} times"))
            continue
        if row.handed_over_at is not None:
            again.append((copy, row))
        sending.append(copy)
    await give_up(session, kind, deferred_too_often)
    await _report_possible_duplicates(session, kind, again)
    return sending


async def send(session: AsyncConnection, mailings: list[Mailing], kind: str, consumer: str, mailer: Mailer) -> None:
    """Send the mailings, recording each hand-over and outcome on `session` (the one holding the
    locks). A bounce is on record with its operator's task, and done. Raises when another mail
    did not leave, after recording the others (SMTP away first, so the consumer pauses rather
    than dead-letters; a deferral is the mail's own failure, so the broker tries it again)."""
    async with HandoverRecord(session, mailings, kind, consumer) as record:
        outcomes = await mailer.send_all([m.message for m in mailings], record)
    failures = [failure for failure in outcomes if failure is not None and not isinstance(failure, MailBounced)]
    if failures:
        raise next((f for f in failures if isinstance(f, DependencyDown)), failures[0])


async def _report_possible_duplicates(session: AsyncConnection, kind: str, again: list) -> None:
    """On record once per hand-over: the hand-over moves to possible_duplicates."""
    if not again:
        return
    await session.execute(insert(possible_duplicates), [dict(
        consultation_id=copy.consultation_id, kind=kind, receipt_no=copy.receipt_no,
        message_id=mail.message_id(kind, copy.consultation_id, row.attempt), handed_over_at=row.handed_over_at,
    ) for copy, row in again])
    await session.execute(update(notifications).where(notifications.c.id.in_([row.id for _, row in again]))
                          .values(handed_over_at=None))
    duplicates_reported.inc(len(again))
    for copy, row in again:
        log.warning("possible duplicate %s e-mail: receipt=%s consultation=%s (handed to SMTP at %s, outcome "
                    "never recorded): sending again", kind, copy.receipt_no, copy.consultation_id,
                    row.handed_over_at.isoformat())
