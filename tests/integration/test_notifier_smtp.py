"""SMTP's failures against a real SMTP server (aiosmtpd, told by the test to answer 4xx, 5xx or
hang), on real Postgres and, where holding a batch is the point, the real broker:
- a 5xx for a recipient (or an address the server cannot take) is the mail's end: `failed` on
  record and one `bounced` task for an operator, never a second one on redelivery;
- a 4xx for the server, or a server that hangs, holds the batch with backoff (nothing counted,
  nothing dead-lettered) and the mail goes once, when the server answers again;
- a 4xx naming one mailbox is tried a few times, then handed to an operator;
- STARTTLS and log-in, with a certificate the test makes;
- no e-mail twice across a redelivery and a restart of the notifier.
"""
import asyncio
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

import aio_pika
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr
from sqlalchemy import select

from services.notifier import handlers
from services.notifier.acknowledging import acknowledge
from services.notifier.declining import decline
from services.notifier.orm import possible_duplicates
from services.notifier.sending import RecipientDeferred, SmtpMailer, SmtpRefusesDesk
from shared import events as ev
from shared.failures import is_infrastructure
from shared.db import make_engine, make_sessions
from shared.messaging import Consumers, Delivery
from shared.topology import dead_letter_queue_name, queue_name
from tests.integration.test_notifier import sessions  # noqa: F401 (the fixture)
from tests.integration.test_notifier import free_port, notification, outbox_events, received

RECEIVED_QUEUE = queue_name("notifier", ev.ConsultationReceived)


class Sink:
    """The SMTP server's side. Counts what it took per Message-ID; answers `busy` at RCPT while
    told to (a 4xx about the server), `refuse` for some recipients, and hangs at EHLO while
    `hanging` is set. Runs in aiosmtpd's thread: the flags are threading.Events."""

    def __init__(self, refuse: dict | None = None):
        self.refuse = refuse or {}
        self.taken: Counter = Counter()
        self.recipients_tried: Counter = Counter()
        self.sessions: list[tuple] = []  # (TLS on, logged in) of each mail taken
        self.busy, self.hanging = threading.Event(), threading.Event()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        while self.hanging.is_set():  # a server that accepted the connection and went quiet
            await asyncio.sleep(0.05)
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.recipients_tried[address] += 1
        if self.busy.is_set():
            return "451 4.3.0 temporary local problem, try again later"
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.taken["".join(str(message["Message-ID"]).split())] += 1
        self.sessions.append((session.ssl is not None, session.authenticated))
        return "250 OK"

    def ids(self, prefix: str) -> Counter:
        return Counter({k: v for k, v in self.taken.items() if k.startswith(prefix)})


@contextmanager
def smtp_server(sink: Sink, **options):
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller.port
    finally:
        sink.hanging.clear()
        controller.stop()


def mailer_settings(desk, port: int, **more):
    return desk.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout_s": 1.0,
                                   "smtp_connections": 2, **more})


async def eventually(check, timeout: float = 15.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def tasks_of(sessions, consultation_id) -> list[tuple]:
    return [(t.kind, t.reason, t.attempt) for t in await outbox_events(sessions, consultation_id, ev.TaskIssued)]


def republished(delivery: Delivery) -> Delivery:
    return Delivery(ev.wrap(delivery.event, delivery.envelope.correlation_id), delivery.event)


# --- refused for good, deferred, a bad address: one task per failed mail ----------------------

async def test_a_5xx_for_the_recipient_is_failed_for_good_with_one_operator_task(sessions, desk):
    refused, fine, non_ascii = (received(email=a) for a in ("gone@example.jp", "fine@example.jp", "やまだ@example.jp"))
    batch = [Delivery(envelope, event) for event, envelope in (refused, fine, non_ascii)]
    sink = Sink(refuse={"gone@example.jp": "550 5.1.1 no such mailbox"})
    with smtp_server(sink, enable_SMTPUTF8=False) as port:  # so it cannot take a non-ASCII address
        mailer = SmtpMailer(mailer_settings(desk, port))
        await acknowledge(batch, sessions, mailer, desk)  # no error: a bounce is on record, not retried
        await acknowledge(batch, sessions, mailer, desk)  # redelivered
        await acknowledge([republished(d) for d in batch], sessions, mailer, desk)  # published twice
    assert sink.recipients_tried["gone@example.jp"] == 1, "a bounce is never tried again"
    assert sink.ids("<acknowledgement.") == Counter({f"<acknowledgement.{fine[0].consultation_id}@payhara-desk.invalid>": 1})
    for (event, _), why in ((refused, "refused 550"), (non_ascii, "address")):
        row = await notification(sessions, event.consultation_id)
        assert (row.status, row.failure, row.handed_over_at, row.failed_at is not None) == ("failed", why, None, True)
        assert await tasks_of(sessions, event.consultation_id) == [("bounced", "acknowledgement", 1)]
        (task,) = await outbox_events(sessions, event.consultation_id, ev.TaskIssued)
        assert task.contact.phone == "090-0000-0000"  # the operator calls instead
        assert await outbox_events(sessions, event.consultation_id, ev.EmailSent) == []
    assert await tasks_of(sessions, fine[0].consultation_id) == []

    # another mail to the same address is another cause: its own task, once
    rejected = ev.EligibilityRejected(consultation_id=refused[0].consultation_id, receipt_no=refused[0].receipt_no,
                                      reason="not_a_member")
    delivery = Delivery(ev.wrap(rejected, rejected.consultation_id), rejected)
    with smtp_server(sink) as port:
        for again in (delivery, delivery, republished(delivery)):
            await decline([again], sessions, SmtpMailer(mailer_settings(desk, port)), desk)
    assert sorted(await tasks_of(sessions, refused[0].consultation_id)) == [
        ("bounced", "acknowledgement", 1), ("bounced", "rejection", 1)]


async def test_a_4xx_naming_one_mailbox_is_tried_a_few_times_then_given_to_an_operator(sessions, desk):
    full, other = received(email="full@example.jp"), received(email="other@example.jp")
    batch = [Delivery(envelope, event) for event, envelope in (full, other)]
    sink = Sink(refuse={"full@example.jp": "452 4.2.2 mailbox full"})
    with smtp_server(sink) as port:
        mailer = SmtpMailer(mailer_settings(desk, port))
        for _ in range(desk.smtp_deferrals_before_task):
            with pytest.raises(RecipientDeferred) as failure:  # the mail's own failure: the broker
                await acknowledge(batch, sessions, mailer, desk)  # tries it again, nothing pauses
            assert not is_infrastructure(failure.value)
        await acknowledge(batch, sessions, mailer, desk)  # given up: no more tries
        await acknowledge(batch, sessions, mailer, desk)
    assert sink.recipients_tried["full@example.jp"] == desk.smtp_deferrals_before_task
    assert sum(sink.ids("<acknowledgement.").values()) == 1  # the other one, once
    row = await notification(sessions, full[0].consultation_id)
    assert (row.status, row.deferrals) == ("failed", desk.smtp_deferrals_before_task)
    assert row.failure == f"deferred 452, {desk.smtp_deferrals_before_task} times"
    assert await tasks_of(sessions, full[0].consultation_id) == [("bounced", "acknowledgement", 1)]


# --- the server away for now: the batch is held, then sent once ------------------------------

async def publish(desk, envelopes, event_type=ev.ConsultationReceived) -> None:
    """Straight to the notifier's own queue, as the broker routes them: no other service's
    queue fills up with this file's events."""
    connection = await aio_pika.connect(desk.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for envelope in envelopes:
            await channel.default_exchange.publish(
                aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.event_id),
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue_name("notifier", event_type), mandatory=True)


async def depth(desk, queue: str) -> int:
    connection = await aio_pika.connect(desk.amqp_url)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return declared.declaration_result.message_count


def held_settings(desk, port: int):
    return mailer_settings(desk, port, consume_retry_first_s=0.2, consume_retry_max_s=1.0)


class RunningNotifier:
    """A notifier instance's consumers as its process runs them (its handlers, a real
    SmtpMailer, its own engine), without the relay: what it writes stays in its outbox."""

    def __init__(self, settings):
        self.engine = make_engine(settings, pool_size=4)
        self.consumers = Consumers(settings, "notifier")
        self.consumers.include(handlers.subscriptions,
                               handlers.Notifier(make_sessions(self.engine), settings, SmtpMailer(settings)))

    async def __aenter__(self):
        await self.consumers.start()
        return self

    async def __aexit__(self, *exc):
        await self.consumers.stop(grace_s=5)
        await self.engine.dispose()


async def hold_until_paused(notifier: RunningNotifier, sink: Sink) -> None:
    async def paused():
        return notifier.consumers.paused() == [RECEIVED_QUEUE]
    await eventually(paused, what="the consumer to hold its batch")
    await asyncio.sleep(1.5)  # a few retries with backoff meanwhile: nothing taken, nothing counted
    assert sum(sink.taken.values()) == 0


@pytest.mark.parametrize("trouble", ["4xx", "hang"])
async def test_a_server_away_for_now_holds_the_batch_and_the_mail_goes_once_it_answers(sessions, desk, trouble):
    event, envelope = received(email="waiting@example.jp")
    wanted = f"<acknowledgement.{event.consultation_id}@payhara-desk.invalid>"
    sink = Sink()
    (sink.busy if trouble == "4xx" else sink.hanging).set()
    with smtp_server(sink) as port:
        async with RunningNotifier(held_settings(desk, port)) as notifier:
            started = time.monotonic()
            await publish(desk, [envelope])
            await hold_until_paused(notifier, sink)
            (sink.busy if trouble == "4xx" else sink.hanging).clear()  # the server recovers

            async def sent():
                return sink.taken[wanted] == 1
            await eventually(sent, what="the acknowledgement")

            async def resumed():
                return notifier.consumers.paused() == []
            await eventually(resumed, what="the consumer to resume")
            await asyncio.sleep(0.5)
        assert time.monotonic() - started < 30, "a hung server is a timeout, not a wait for ever"
    assert sink.taken == Counter({wanted: 1})
    assert (await notification(sessions, event.consultation_id)).status == "sent"
    assert await depth(desk, RECEIVED_QUEUE) == 0
    assert await depth(desk, dead_letter_queue_name(RECEIVED_QUEUE)) == 0, "an outage dead-lettered a good event"
    async with sessions() as s:
        assert (await s.execute(select(possible_duplicates).where(
            possible_duplicates.c.consultation_id == event.consultation_id))).all() == []


# --- no duplicate across a redelivery and a restart -----------------------------------------

async def test_no_mail_twice_across_a_restart_and_redeliveries(sessions, desk):
    consultations = [received(email=f"restart{n}@example.jp", method="phone") for n in range(3)]
    envelopes = [envelope for _, envelope in consultations]
    sink = Sink()
    sink.hanging.set()  # the first notifier holds the batch, and is stopped while it does
    with smtp_server(sink) as port:
        settings = held_settings(desk, port)
        async with RunningNotifier(settings) as first:
            await publish(desk, envelopes)
            await hold_until_paused(first, sink)
        async with RunningNotifier(settings):  # the restart: a new instance over the same database
            sink.hanging.clear()

            async def acknowledged():
                return len(sink.ids("<acknowledgement.")) == 3
            await eventually(acknowledged, what="three acknowledgements")
            await publish(desk, envelopes)  # every event delivered again
            starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=2)
            bookings = [ev.CallbackScheduled(consultation_id=e.consultation_id, receipt_no=e.receipt_no,
                                             booking_id=uuid.uuid4(), slot_starts_at=starts,
                                             slot_ends_at=starts + timedelta(minutes=30)) for e, _ in consultations]
            booked = [ev.wrap(b, b.consultation_id) for b in bookings]
            await publish(desk, booked + booked, ev.CallbackScheduled)  # and each booking twice

            async def told():
                return len(sink.ids("<callback_booked.")) == 3
            await eventually(told, what="three booked-callback mails")
            await asyncio.sleep(1.0)  # a duplicate still on its way would arrive meanwhile
    assert len(sink.taken) == 6 and set(sink.taken.values()) == {1}, sink.taken
    async with sessions() as s:
        assert (await s.execute(select(possible_duplicates).where(possible_duplicates.c.consultation_id.in_(
            [e.consultation_id for e, _ in consultations])))).all() == []


# --- STARTTLS and log-in ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the system's openssl."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate (Debian: apt-get install openssl)")
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


def only(login: bytes, password: bytes):
    def authenticate(server, session, envelope, mechanism, auth_data):
        # handled=False: aiosmtpd answers 535 itself
        return AuthResult(success=(auth_data.login, auth_data.password) == (login, password), handled=False)
    return authenticate


@pytest.fixture
def tls_server(certificate):
    _, context = certificate
    sink = Sink()
    with smtp_server(sink, tls_context=context, require_starttls=True, auth_required=True,
                     authenticator=only(b"desk", b"s3cret")) as port:
        yield sink, port


@pytest.mark.parametrize("verify", ["ca_file", "no_verify"])
async def test_starttls_and_log_in(sessions, desk, certificate, tls_server, verify):
    sink, port = tls_server
    cert, _ = certificate
    trust = {"smtp_tls_ca_file": str(cert)} if verify == "ca_file" else {"smtp_tls_verify": False}
    settings = mailer_settings(desk, port, smtp_starttls=True, smtp_username="desk", smtp_password=SecretStr("s3cret"), **trust)
    event, envelope = received(email="tls@example.jp")
    await acknowledge([Delivery(envelope, event)], sessions, SmtpMailer(settings), desk)
    assert sink.ids("<acknowledgement.") == Counter({f"<acknowledgement.{event.consultation_id}@payhara-desk.invalid>": 1})
    assert sink.sessions == [(True, True)], "over TLS, logged in"


@pytest.mark.parametrize("wrong", ["password", "no_starttls", "unverified_certificate"])
async def test_a_server_that_refuses_the_desk_holds_the_mail_and_hands_nothing_over(sessions, desk, tls_server, wrong):
    """A setting to fix, not a consultant's address: paused like an outage, no bounce, no task."""
    sink, port = tls_server
    settings = mailer_settings(desk, port, smtp_starttls=wrong != "no_starttls", smtp_username="desk",
                               smtp_password=SecretStr("wrong" if wrong == "password" else "s3cret"),
                               smtp_tls_verify=wrong == "unverified_certificate")
    event, envelope = received(email="held@example.jp")
    with pytest.raises(SmtpRefusesDesk) as failure:
        await acknowledge([Delivery(envelope, event)], sessions, SmtpMailer(settings), desk)
    assert is_infrastructure(failure.value)
    row = await notification(sessions, event.consultation_id)
    assert (row.status, row.attempts, row.handed_over_at) == ("sending", 0, None)
    assert await tasks_of(sessions, event.consultation_id) == [] and sink.taken == Counter()
