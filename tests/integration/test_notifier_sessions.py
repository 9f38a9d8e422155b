"""SMTP sessions kept between batches (services/notifier/sending.py), against a real aiosmtpd
server: the next batch reuses them instead of connecting again; a session the server closed while
idle is noticed before any mail is handed over on it, so the mail goes once with no possible
duplicate on record; with smtp_keep_idle_s=0 every batch connects afresh."""
import asyncio

from aiosmtpd.controller import Controller

from services.notifier.acknowledging import acknowledge
from services.notifier.sending import SmtpMailer
from shared.messaging import Delivery
from tests.integration.test_notifier import sessions  # noqa: F401 (the fixture)
from tests.integration.test_notifier import Inbox, duplicates_on_record, free_port, notification, received


def batch_of(count: int) -> list[Delivery]:
    return [Delivery(envelope, event) for event, envelope in (received(email=f"p{n}@example.jp") for n in range(count))]


def mailer_for(desk, port: int, **more) -> SmtpMailer:
    return SmtpMailer(desk.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout_s": 2.0,
                                              "smtp_connections": 2, **more}))


async def send_batches(sessions, desk, mailer: SmtpMailer, batches: list[list[Delivery]], pause_s: float = 0) -> None:
    for batch in batches:
        await acknowledge(batch, sessions, mailer, desk)
        await asyncio.sleep(pause_s)


async def test_the_next_batch_reuses_the_sessions_of_the_last(sessions, desk):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailer = mailer_for(desk, controller.port)
    try:
        await send_batches(sessions, desk, mailer, [batch_of(4), batch_of(4), batch_of(2)])
    finally:
        await mailer.close_idle()
        controller.stop()
    assert len(inbox.messages) == 10
    assert len(inbox.peers) == 2, "three batches over the same two connections"


async def test_with_no_keeping_every_batch_connects_afresh(sessions, desk):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailer = mailer_for(desk, controller.port, smtp_keep_idle_s=0)
    try:
        await send_batches(sessions, desk, mailer, [batch_of(2), batch_of(2)])
    finally:
        controller.stop()
    assert len(inbox.messages) == 4
    assert len(inbox.peers) == 4


async def test_a_session_the_server_closed_while_idle_is_replaced_before_any_hand_over(sessions, desk):
    inbox = Inbox()
    # the server drops a session idle for 0.3 s (421, then closes), as real servers do after minutes
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), timeout=0.3)
    controller.start()
    mailer = mailer_for(desk, controller.port)
    first, second = batch_of(2), batch_of(2)
    try:
        await send_batches(sessions, desk, mailer, [first, second], pause_s=0.8)
    finally:
        await mailer.close_idle()
        controller.stop()
    assert sorted(str(m["Message-ID"]).strip() for _, m in inbox.messages) == sorted(
        f"<acknowledgement.{d.event.consultation_id}@payhara-desk.invalid>" for d in first + second)
    assert len(inbox.peers) == 4, "the closed sessions were not used again"
    for delivery in second:
        assert (await notification(sessions, delivery.event.consultation_id)).status == "sent"
    assert await duplicates_on_record(sessions, [d.event.consultation_id for d in second]) == []


class ClosingInbox(Inbox):
    """A server going down: once told, it answers 421 to anything on the sessions it had."""

    def __init__(self):
        super().__init__()
        self.closing_peers: set = set()

    async def handle_NOOP(self, server, session, envelope, arg):
        return "421 4.3.2 closing down" if session.peer in self.closing_peers else "250 OK"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if session.peer in self.closing_peers:
            return "421 4.3.2 closing down"
        envelope.mail_from = address
        return "250 OK"


async def test_a_session_that_no_longer_answers_well_is_replaced(sessions, desk):
    inbox = ClosingInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailer = mailer_for(desk, controller.port)
    second = batch_of(2)
    try:
        await send_batches(sessions, desk, mailer, [batch_of(2)])
        inbox.closing_peers = set(inbox.peers)
        await send_batches(sessions, desk, mailer, [second])  # raises if a mail went to a closing session
    finally:
        await mailer.close_idle()
        controller.stop()
    assert len(inbox.messages) == 4 and len(inbox.peers) == 4
    for delivery in second:
        assert (await notification(sessions, delivery.event.consultation_id)).status == "sent"


async def test_sessions_idle_past_their_time_are_closed(sessions, desk):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailer = mailer_for(desk, controller.port, smtp_keep_idle_s=0.2)
    try:
        await send_batches(sessions, desk, mailer, [batch_of(2)], pause_s=0.3)
        await mailer.close_idle(older_than_s=mailer.keep_idle_s, polite=True)
        kept_after_expiry = len(mailer._idle)
        await send_batches(sessions, desk, mailer, [batch_of(2)])
        kept_after_batch = len(mailer._idle)
    finally:
        await mailer.close_idle()
        controller.stop()
    assert (kept_after_expiry, kept_after_batch) == (0, 2)
    assert len(inbox.peers) == 4
