"""The acknowledgement's crash window, on real Postgres and a real SMTP server: a notifier killed
mid-batch leaves the mails sent before marked `sent` and only the mail in the server's hands in
doubt; SMTP's answers decide between "try later", "never" and "maybe taken"."""
import asyncio
import threading
from contextlib import contextmanager
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import event

from services.notifier.acknowledging import acknowledge
from services.notifier.sending import MailNotSent, RecipientDeferred, SmtpBusy, SmtpMailer
from shared import events as ev
from shared.failures import DependencyDown, is_infrastructure
from shared.messaging import Delivery
from tests.integration.test_notifier import sessions  # noqa: F401 (the fixture)
from tests.integration.test_notifier import (
    FakeMailer, duplicates, duplicates_on_record, free_port, notification, outbox_events, received,
)


class Mailbox:
    """The SMTP server's side: takes mails, refuses some recipients, stalls, answers 421 or hangs
    up at the n-th DATA (counted from 0)."""

    def __init__(self, refuse: dict | None = None, stall_at: int | None = None, hang_up_at: int | None = None,
                 busy_at: int | None = None):
        self.received = []
        self.refuse = refuse or {}
        self.stall_at, self.hang_up_at, self.busy_at = stall_at, hang_up_at, busy_at
        self.data_seen = 0
        self.stalled, self.release = threading.Event(), threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        seen, self.data_seen = self.data_seen, self.data_seen + 1
        if seen == self.stall_at:
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        if seen == self.busy_at:
            return "421 4.3.2 service not available, try again later"
        if seen == self.hang_up_at:
            server.transport.close()  # the connection drops before the answer: taken or not?
            return "250 OK"
        self.received.append(message_from_bytes(envelope.content, policy=policy.default)["To"])
        return "250 OK"


@contextmanager
def smtp_server(mailbox: Mailbox):
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        mailbox.release.set()
        controller.stop()


def smtp_mailer(desk, port: int, connections: int = 1) -> SmtpMailer:
    return SmtpMailer(desk.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port,
                                              "smtp_connections": connections, "smtp_timeout_s": 5.0}))


def batch_of(n: int) -> tuple[list, list[Delivery]]:
    events = [received(email=f"person{i}@example.jp") for i in range(n)]
    return [e for e, _ in events], [Delivery(envelope, e) for e, envelope in events]


async def states(sessions, events) -> list[tuple]:
    rows = [await notification(sessions, e.consultation_id) for e in events]
    return [(r.status, r.attempts, r.handed_over_at is not None) for r in rows]


KILLED_AT_2 = [("sent", 1, True), ("sent", 1, True), ("sending", 1, True), ("sending", 0, False), ("sending", 0, False)]


class KilledMailer(FakeMailer):
    """The process dies while mail `at` is in the server's hands."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    async def send(self, message):
        if len(self.sent) == self.at:
            raise asyncio.CancelledError()
        return await super().send(message)


async def test_a_notifier_killed_mid_batch_leaves_only_the_mail_in_flight_in_doubt(sessions, desk):
    events, deliveries = batch_of(5)
    with pytest.raises(asyncio.CancelledError):
        await acknowledge(deliveries, sessions, KilledMailer(at=2), desk)
    assert await states(sessions, events) == KILLED_AT_2
    for e in events[:2]:  # each `sent` with its event, though the batch never finished
        assert len(await outbox_events(sessions, e.consultation_id, ev.EmailSent)) == 1

    before, retry = duplicates(), FakeMailer()
    await acknowledge(deliveries, sessions, retry, desk)  # the broker redelivers the batch
    assert [m["To"] for m in retry.sent] == ["person2@example.jp", "person3@example.jp", "person4@example.jp"]
    flags = await duplicates_on_record(sessions, [e.consultation_id for e in events])
    assert [f.consultation_id for f in flags] == [events[2].consultation_id]
    assert duplicates() == before + 1


async def test_a_notifier_killed_during_a_real_smtp_send(sessions, desk):
    """What a kill -9 leaves is what is committed while the third mail is in the server's hands."""
    events, deliveries = batch_of(5)
    mailbox = Mailbox(stall_at=2)
    with smtp_server(mailbox) as port:
        sending = asyncio.create_task(acknowledge(deliveries, sessions, smtp_mailer(desk, port), desk))
        while not mailbox.stalled.is_set():
            await asyncio.sleep(0.01)
        assert await states(sessions, events) == KILLED_AT_2
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
    assert await states(sessions, events) == KILLED_AT_2

    before, mailbox = duplicates(), Mailbox()
    with smtp_server(mailbox) as port:
        await acknowledge(deliveries, sessions, smtp_mailer(desk, port, connections=2), desk)
    assert sorted(mailbox.received) == ["person2@example.jp", "person3@example.jp", "person4@example.jp"]
    flags = await duplicates_on_record(sessions, [e.consultation_id for e in events])
    assert [(f.consultation_id, f.receipt_no) for f in flags] == [(events[2].consultation_id, events[2].receipt_no)]
    assert duplicates() == before + 1
    assert [s for s, _, _ in await states(sessions, events)] == ["sent"] * 5


async def test_a_connection_dropped_during_data_is_a_possible_duplicate(sessions, desk):
    events, deliveries = batch_of(2)
    with smtp_server(Mailbox(hang_up_at=0)) as port:
        with pytest.raises(Exception) as failure:
            await acknowledge(deliveries, sessions, smtp_mailer(desk, port), desk)
    assert not isinstance(failure.value, MailNotSent)  # unknown: the server may have taken it
    assert await states(sessions, events) == [("sending", 1, True), ("sent", 1, True)]
    with smtp_server(Mailbox()) as port:
        await acknowledge(deliveries, sessions, smtp_mailer(desk, port), desk)
    assert len(await duplicates_on_record(sessions, [e.consultation_id for e in events])) == 1


async def test_a_recipient_refused_for_good_is_on_record_as_failed_and_no_duplicate(sessions, desk):
    """A bounce is the mail's end, not an error: the consultant is reached by an operator
    (test_notifier_smtp.py), and the batch goes on."""
    events, deliveries = batch_of(2)
    mailbox = Mailbox(refuse={"person0@example.jp": "550 5.1.1 no such mailbox"})
    with smtp_server(mailbox) as port:
        await acknowledge(deliveries, sessions, smtp_mailer(desk, port), desk)
    assert mailbox.received == ["person1@example.jp"]
    assert await states(sessions, events) == [("failed", 1, False), ("sent", 1, True)]
    with smtp_server(Mailbox()) as port:
        await acknowledge(deliveries, sessions, smtp_mailer(desk, port), desk)
    assert await duplicates_on_record(sessions, [e.consultation_id for e in events]) == []


async def test_a_4xx_for_the_session_is_the_server_away_for_now(sessions, desk):
    events, deliveries = batch_of(2)
    mailbox = Mailbox(busy_at=1)  # "421 service not available" at the second mail's DATA
    with smtp_server(mailbox) as port:
        with pytest.raises(SmtpBusy) as failure:
            await acknowledge(deliveries, sessions, smtp_mailer(desk, port), desk)
    assert is_infrastructure(failure.value)
    assert await states(sessions, events) == [("sent", 1, True), ("sending", 1, False)]
    with smtp_server(Mailbox()) as port:
        await acknowledge(deliveries, sessions, smtp_mailer(desk, port), desk)
    assert await duplicates_on_record(sessions, [e.consultation_id for e in events]) == []


async def test_a_4xx_for_one_recipient_is_that_mail_s_problem_not_a_paused_desk(sessions, desk):
    events, deliveries = batch_of(2)
    mailbox = Mailbox(refuse={"person1@example.jp": "452 4.2.2 mailbox full"})
    with smtp_server(mailbox) as port:
        with pytest.raises(RecipientDeferred) as failure:
            await acknowledge(deliveries, sessions, smtp_mailer(desk, port), desk)
    assert not is_infrastructure(failure.value), "one full mailbox must not pause every acknowledgement"
    assert await states(sessions, events) == [("sent", 1, True), ("sending", 1, False)]


async def test_an_smtp_server_away_pauses_the_consumer_and_hands_nothing_over(sessions, desk):
    events, deliveries = batch_of(3)
    with pytest.raises(DependencyDown) as failure:
        await acknowledge(deliveries, sessions, smtp_mailer(desk, free_port(), connections=2), desk)
    assert is_infrastructure(failure.value)
    assert await states(sessions, events) == [("sending", 0, False)] * 3


async def test_marks_are_committed_in_groups(sessions, desk):
    """Two marks per mail, but a mark made while another commit runs shares the next one: over
    one connection, mail k's `sent` goes with mail k+1's hand-over."""
    events, deliveries = batch_of(8)
    commits = []
    listener = lambda connection: commits.append(1)  # noqa: E731
    event.listen(sessions.engine.sync_engine, "commit", listener)
    try:
        with smtp_server(Mailbox()) as port:
            await acknowledge(deliveries, sessions, smtp_mailer(desk, port), desk)
    finally:
        event.remove(sessions.engine.sync_engine, "commit", listener)
    assert [s for s, _, _ in await states(sessions, events)] == ["sent"] * 8
    locks_decision_unlock = 3
    assert len(commits) == locks_decision_unlock + len(events) + 1  # not 2 * len(events)
