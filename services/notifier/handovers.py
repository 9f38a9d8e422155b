"""The record of each e-mail's hand-over to SMTP and of its outcome, kept while the mails go.

A mail is marked handed over (committed) just before its own send, and sent (with its
email_sent event and its deliveries' inbox rows) as soon as the server took it. So a crash
leaves without an outcome only the mails then in the server's hands: those, and only those,
are possible duplicates on the retry.

A mail the server refused for good is marked `failed` with an operator's `bounced` task, in the
same way, so a redelivery neither sends it again nor issues a second task; a 4xx naming the
recipient is counted (once.py gives the mail up after a few).

Marks are committed in groups so this costs a few commits per batch, not two per mail: one
transaction carries every mark made while the previous one was committing. The groups run one
after another on the caller's connection, the one that holds the advisory locks.
"""
import asyncio
import logging
from dataclasses import dataclass, field
from email.message import Message

from sqlalchemy import bindparam, func, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.bounces import Bounce, give_up
from services.notifier.orm import inbox, notifications, outbox
from services.notifier.sending import MailBounced, MailNotSent, RecipientDeferred
from shared import events as ev
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events

log = logging.getLogger("payhara.notifier")


@dataclass(frozen=True)
class Mailing:
    """One mail of a batch: the consultation copy it goes to, and the deliveries asking for it."""

    copy: Row
    message: Message
    deliveries: list[Delivery]
    attempt: int = 1  # the booked callback's attempt (callback_booked); 1 for every other kind
    # the kinds this mail tells besides its own, at attempt 1: a receipt telling the first booked
    # callback (booked.tell_with_receipt); their rows go the mail's way
    also_told: tuple[str, ...] = ()


@dataclass
class _Group:
    handed_over: list[Mailing] = field(default_factory=list)
    sent: list[Mailing] = field(default_factory=list)
    not_taken: list[Mailing] = field(default_factory=list)
    deferred: list[tuple[Mailing, RecipientDeferred]] = field(default_factory=list)
    bounced: list[tuple[Mailing, MailBounced]] = field(default_factory=list)
    committed: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def __bool__(self) -> bool:
        return bool(self.handed_over or self.sent or self.not_taken or self.deferred or self.bounced)


class HandoverRecord:
    """`async with HandoverRecord(...) as record`: the exit waits for every mark to be committed
    (and raises if one could not be); after a failed commit nothing more is recorded or sent."""

    def __init__(self, session: AsyncConnection, mailings: list[Mailing], kind: str, consumer: str):
        self._session = session
        self._kind = kind
        self._consumer = consumer
        self._by_message_id = {m.message["Message-ID"]: m for m in mailings}
        self._next = _Group()
        self._committing: asyncio.Task | None = None
        self._failure: BaseException | None = None

    async def handing_over(self, message: Message) -> None:
        group = self._mark("handed_over", message)
        await asyncio.shield(group.committed)  # a sender cancelled must not cancel the others' commit

    def returned(self, message: Message, failure: Exception | None) -> None:
        if failure is None:
            self._mark("sent", message)
        elif isinstance(failure, MailBounced):
            self._mark("bounced", message, failure)
        elif isinstance(failure, RecipientDeferred):
            self._mark("deferred", message, failure)
        elif isinstance(failure, MailNotSent):
            self._mark("not_taken", message)
        # unknown outcome: the hand-over stays on record, and the retry reports it

    def _mark(self, what: str, message: Message, failure: MailNotSent | None = None) -> _Group:
        if self._failure is not None:
            raise self._failure
        group = self._next
        mailing = self._by_message_id[message["Message-ID"]]
        getattr(group, what).append(mailing if failure is None else (mailing, failure))
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_groups())
        return group

    async def _commit_groups(self) -> None:
        try:
            while self._next:
                group, self._next = self._next, _Group()
                try:
                    async with self._session.begin():
                        await self._write(group)
                except BaseException as error:
                    self._fail(error, group)  # the senders hear of it, and the exit raises it
                    if isinstance(error, asyncio.CancelledError):
                        raise
                    return
                group.committed.set_result(None)
                for mailing in group.sent:
                    log.info("%s e-mail sent: receipt=%s", self._kind, mailing.copy.receipt_no)
        finally:
            self._committing = None

    def _fail(self, error: BaseException, group: _Group) -> None:
        self._failure = error
        for waiting in (group, self._next):
            if isinstance(error, asyncio.CancelledError):
                waiting.committed.cancel()
            else:
                waiting.committed.set_exception(error)
                waiting.committed.exception()  # retrieved: a group nobody waits for is no error to log

    async def _write(self, group: _Group) -> None:
        this_kind = notifications.c.kind == self._kind
        if group.handed_over:
            await self._session.execute(update(notifications).where(this_kind, _mails_in(group.handed_over)).values(
                handed_over_at=func.now(), attempts=notifications.c.attempts + 1))
        if group.not_taken:  # certainly not sent: the retry is no duplicate
            await self._session.execute(update(notifications).where(this_kind, _mails_in(group.not_taken)).values(
                handed_over_at=None))
        if group.deferred:  # certainly not sent either; counted, and given up after a few (once.py)
            await self._session.execute(update(notifications).where(
                this_kind, notifications.c.consultation_id == bindparam("b_id"),
                notifications.c.attempt == bindparam("b_attempt")).values(
                handed_over_at=None, deferrals=notifications.c.deferrals + 1, failure=bindparam("b_why")),
                [{"b_id": m.copy.consultation_id, "b_attempt": m.attempt, "b_why": _why(failure)}
                 for m, failure in group.deferred])
        if group.bounced:
            await give_up(self._session, self._kind, [
                Bounce(m.copy, m.attempt, _why(failure)) for m, failure in group.bounced])
            await self._also_told([m for m, _ in group.bounced], status="failed")  # its one task is the receipt's
            await first_deliveries(self._session, inbox, self._consumer, [d for m, _ in group.bounced for d in m.deliveries])
        if group.sent:
            await self._session.execute(update(notifications).where(
                this_kind, notifications.c.consultation_id == bindparam("b_id"),
                notifications.c.attempt == bindparam("b_attempt")).values(
                status="sent", sent_at=func.now(), message_id=bindparam("b_message_id")),
                [{"b_id": m.copy.consultation_id, "b_attempt": m.attempt, "b_message_id": m.message["Message-ID"]}
                 for m in group.sent])
            await add_events(self._session, outbox, [(ev.EmailSent(
                consultation_id=m.copy.consultation_id, receipt_no=m.copy.receipt_no, kind=self._kind,
                message_id=m.message["Message-ID"], attempt=m.attempt,
                also_told=list(m.also_told)), m.copy.consultation_id) for m in group.sent])
            await self._also_told(group.sent, status="sent")
            await first_deliveries(self._session, inbox, self._consumer, [d for m in group.sent for d in m.deliveries])

    async def _also_told(self, mailings: list[Mailing], status: str) -> None:
        """What a mail told besides its own kind goes its way: sent with it (under its
        Message-ID), or failed with it."""
        told = [(m, kind) for m in mailings for kind in m.also_told]
        if told:
            await self._session.execute(update(notifications).where(
                notifications.c.kind == bindparam("b_kind"), notifications.c.attempt == 1,
                notifications.c.consultation_id == bindparam("b_id")).values(
                status=status, sent_at=func.now() if status == "sent" else None, message_id=bindparam("b_message_id")),
                [{"b_kind": kind, "b_id": m.copy.consultation_id, "b_message_id": m.message["Message-ID"]}
                 for m, kind in told])

    async def __aenter__(self) -> "HandoverRecord":
        return self

    async def __aexit__(self, error_type, error, traceback) -> None:
        # even when the sending failed: what did happen goes on record, and the connection is
        # never left with a commit running on it
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)
        if error is None and self._failure is not None:
            raise self._failure


def _mails_in(mailings: list[Mailing]):
    return tuple_(notifications.c.consultation_id, notifications.c.attempt).in_(
        [(m.copy.consultation_id, m.attempt) for m in mailings])


def _why(failure: MailBounced | RecipientDeferred) -> str:
    """Codes only: the server's text can name the recipient's address."""
    if isinstance(failure, RecipientDeferred):
        return f"deferred {failure.code}"
    return f"refused {failure.code}" if failure.code else "address"
