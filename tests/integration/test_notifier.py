"""The notifier on real Postgres (and a real SMTP server): an acknowledgement is sent once, a
crash between the send and its record is reported, a task is issued once whatever the order.
The crash window of a batch and SMTP's failures: test_notifier_handovers.py."""
import asyncio
import socket
import uuid
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select

from services.notifier.acknowledging import acknowledge
from services.notifier.declining import decline
from services.notifier.orm import consultations, notifications, outbox, pending, possible_duplicates, tasks
from services.notifier.sending import MailNotSent, SmtpMailer
from services.notifier import tasks as task_cases
from shared import events as ev
from shared.messaging import Delivery
from shared.db import make_engine, make_sessions

DUPLICATES = "payhara_possible_duplicate_emails_total"


class FakeMailer:
    """Hands each mail over the way SmtpMailer does, one after another; keeps what was taken."""

    def __init__(self, delay_s: float = 0.0, fail_with: Exception | None = None):
        self.sent = []
        self.delay_s = delay_s
        self.fail_with = fail_with

    async def send_all(self, messages, handovers) -> list:
        outcomes = []
        for message in messages:
            await handovers.handing_over(message)
            outcomes.append(await self.send(message))
            handovers.returned(message, outcomes[-1])
        return outcomes

    async def send(self, message) -> Exception | None:
        await asyncio.sleep(self.delay_s)
        if self.fails(message):
            return self.fail_with
        self.sent.append(message)
        return None

    def fails(self, message) -> bool:
        return self.fail_with is not None


class RefusingMailer(FakeMailer):
    """Refuses the mails to one address, takes the others."""

    def __init__(self, refused: str):
        super().__init__(fail_with=MailNotSent("550"))
        self.refused = refused

    def fails(self, message) -> bool:
        return message["To"] == self.refused


async def on_scheduled(event, envelope, sessions):
    await task_cases.order_tasks([Delivery(envelope, event)], sessions, "notifier.scheduled", task_cases.scheduled_order)


async def on_review_requested(event, envelope, sessions):
    await task_cases.order_tasks([Delivery(envelope, event)], sessions, "notifier.review", task_cases.review_order)


async def on_rejected(event, envelope, sessions):
    await task_cases.order_tasks([Delivery(envelope, event)], sessions, "notifier.rejected", task_cases.decline_order)


@pytest.fixture(scope="module")
async def sessions(desk):
    engine = make_engine(desk, pool_size=4)
    yield make_sessions(engine)
    await engine.dispose()


def received(consultation_id=None, email="hanako@example.jp", method="email"):
    cid = consultation_id or uuid.uuid4()
    event = ev.ConsultationReceived(
        consultation_id=cid, receipt_no=f"PH-261124-{cid.int % 10**5:05d}", channel="web",
        received_at=datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc), contact_expected_from=date(2026, 11, 25),
        consultant=ev.Consultant(name="山田 花子", name_kana="ヤマダ ハナコ", role="member", member_no="M-1"),
        institution=ev.InstitutionInfo(), contact=ev.Contact(method=method, phone="090-0000-0000", email=email),
        category="online", summary="口コミに虚偽の投稿", urls=["https://maps.example.com/r/1"],
    )
    return event, ev.wrap(event, cid)


def scheduled(consultation_id, booking_id=None):
    starts = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)
    event = ev.CallbackScheduled(
        consultation_id=consultation_id, receipt_no="PH-261124-00000", booking_id=booking_id or uuid.uuid4(),
        slot_starts_at=starts, slot_ends_at=starts + timedelta(minutes=30),
    )
    return event, ev.wrap(event, consultation_id)


async def outbox_events(sessions, consultation_id, event_type):
    async with sessions() as s:
        bodies = (await s.scalars(select(outbox.c.body).where(
            outbox.c.correlation_id == consultation_id, outbox.c.routing_key == event_type.routing_key))).all()
    return [ev.unwrap(b, event_type)[1] for b in bodies]


async def notification(sessions, consultation_id):
    async with sessions() as s:
        return (await s.execute(select(notifications).where(notifications.c.consultation_id == consultation_id))).one()


async def duplicates_on_record(sessions, consultation_ids) -> list:
    async with sessions() as s:
        return (await s.execute(select(possible_duplicates).where(
            possible_duplicates.c.consultation_id.in_(list(consultation_ids))))).all()


def plain_text(message) -> str:
    """The plain-text part of a multipart/alternative mail, as a mail program reads it."""
    return message.get_body(("plain",)).get_content()


def duplicates() -> float:
    return REGISTRY.get_sample_value(DUPLICATES) or 0.0


async def test_acknowledging_twice_sends_one_mail(sessions, desk):
    event, envelope = received()
    mailer, before = FakeMailer(), duplicates()
    await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)
    await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)
    assert len(mailer.sent) == 1
    assert mailer.sent[0]["Message-ID"] == f"<acknowledgement.{event.consultation_id}@payhara-desk.invalid>"
    sent = await outbox_events(sessions, event.consultation_id, ev.EmailSent)
    assert [(e.kind, e.receipt_no) for e in sent] == [("acknowledgement", event.receipt_no)]
    row = await notification(sessions, event.consultation_id)
    assert (row.status, row.attempts, row.message_id) == ("sent", 1, sent[0].message_id)
    assert duplicates() == before


async def test_concurrent_duplicates_send_one_mail(sessions, desk):
    """The same event handled by two instances at once: the second waits and finds `sent`."""
    event, envelope = received()
    mailer, before = FakeMailer(delay_s=0.3), duplicates()
    await asyncio.gather(*(acknowledge([Delivery(envelope, event)], sessions, mailer, desk) for _ in range(3)))
    assert len(mailer.sent) == 1
    assert len(await outbox_events(sessions, event.consultation_id, ev.EmailSent)) == 1
    assert duplicates() == before


async def test_a_crash_between_send_and_commit_is_reported(sessions, desk):
    event, envelope = received()
    handed_over_at = datetime(2026, 11, 24, 10, 0, 5, tzinfo=timezone.utc)
    async with sessions.begin() as s:  # what a crash after the send leaves behind
        await s.execute(insert(notifications).values(
            consultation_id=event.consultation_id, kind="acknowledgement", status="sending", attempts=1,
            handed_over_at=handed_over_at))
    mailer, before = FakeMailer(), duplicates()
    await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)
    assert len(mailer.sent) == 1
    assert duplicates() == before + 1
    row = await notification(sessions, event.consultation_id)
    assert (row.status, row.attempts) == ("sent", 2)
    [flag] = await duplicates_on_record(sessions, [event.consultation_id])
    assert (flag.receipt_no, flag.kind, flag.handed_over_at) == (event.receipt_no, "acknowledgement", handed_over_at)
    assert flag.message_id == f"<acknowledgement.{event.consultation_id}@payhara-desk.invalid>"
    await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)  # redelivered once more
    assert len(await duplicates_on_record(sessions, [event.consultation_id])) == 1


async def test_a_refused_mail_is_retried_without_a_duplicate_report(sessions, desk):
    event, envelope = received()
    before = duplicates()
    with pytest.raises(MailNotSent):
        await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(fail_with=MailNotSent("550")), desk)
    row = await notification(sessions, event.consultation_id)
    assert (row.status, row.attempts, row.handed_over_at) == ("sending", 1, None)  # handed over, refused
    with pytest.raises(ConnectionResetError):  # unknown outcome: the next try must report it
        await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(fail_with=ConnectionResetError()), desk)
    assert (await notification(sessions, event.consultation_id)).handed_over_at is not None
    assert await duplicates_on_record(sessions, [event.consultation_id]) == []
    mailer = FakeMailer()
    await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)
    assert len(mailer.sent) == 1
    assert duplicates() == before + 1
    assert len(await duplicates_on_record(sessions, [event.consultation_id])) == 1


async def test_no_email_address_means_no_mail(sessions, desk):
    event, envelope = received(email=None, method="phone")
    mailer = FakeMailer()
    await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)
    assert mailer.sent == []
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(notifications).where(
            notifications.c.consultation_id == event.consultation_id)) == 0
        assert await s.scalar(select(consultations.c.receipt_no).where(
            consultations.c.consultation_id == event.consultation_id)) == event.receipt_no


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    def __init__(self):
        self.messages = []
        self.peers = set()

    async def handle_DATA(self, server, session, envelope):
        self.peers.add(session.peer)  # one per SMTP connection
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


async def test_a_real_smtp_round_trip(sessions, desk):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        event, envelope = received()
        mailer = SmtpMailer(desk.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": controller.port}))
        await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)
        await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    recipients, message = inbox.messages[0]
    assert recipients == ["hanako@example.jp"]
    # the 89-character header is folded on the wire (RFC 5322); unfolded it is the same id
    assert message["Message-ID"].strip() == f"<acknowledgement.{event.consultation_id}@payhara-desk.invalid>"
    assert message["Subject"] == f"【受付番号 {event.receipt_no}】ご相談を受け付けました"
    assert "2026年11月25日（水）" in plain_text(message)
    assert message["Date"]


async def test_scheduled_before_received_waits_then_issues_one_call_task(sessions, desk):
    cid = uuid.uuid4()
    call, call_envelope = scheduled(cid)
    await on_scheduled(call, call_envelope, sessions)
    assert await outbox_events(sessions, cid, ev.TaskIssued) == []
    async with sessions() as s:
        assert (await s.execute(select(pending.c.kind, pending.c.booking_id).where(
            pending.c.consultation_id == cid))).all() == [("call", call.booking_id)]

    event, envelope = received(cid, email=None, method="phone")
    await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)
    await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)  # a redelivered `received`
    await on_scheduled(call, call_envelope, sessions)  # a redelivered `scheduled`

    issued = await outbox_events(sessions, cid, ev.TaskIssued)
    assert len(issued) == 1
    task = issued[0]
    assert (task.kind, task.receipt_no, task.due_starts_at) == ("call", event.receipt_no, call.slot_starts_at)
    assert (task.consultant_name, task.contact.phone, task.summary) == ("山田 花子", "090-0000-0000", event.summary)
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(pending).where(pending.c.consultation_id == cid)) == 0
        assert await s.scalar(select(tasks.c.booking_id).where(tasks.c.consultation_id == cid)) == call.booking_id


async def test_scheduled_redelivered_issues_one_task(sessions, desk):
    event, envelope = received()  # contact by e-mail: the booked contact is an e-mail task
    await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)
    call, call_envelope = scheduled(event.consultation_id)
    await on_scheduled(call, call_envelope, sessions)
    await on_scheduled(call, call_envelope, sessions)
    republished = ev.Envelope(**{**call_envelope.model_dump(), "event_id": uuid.uuid4()})
    await on_scheduled(call, republished, sessions)  # same booking, another event id
    issued = await outbox_events(sessions, event.consultation_id, ev.TaskIssued)
    assert [(t.kind, t.urls) for t in issued] == [("email", ["https://maps.example.com/r/1"])]


async def test_review_and_decline_tasks_carry_the_reason(sessions, desk):
    event, envelope = received(email=None, method="phone")
    await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)
    cid = event.consultation_id
    review = ev.EligibilityReviewRequested(consultation_id=cid, receipt_no=event.receipt_no, reason="member_not_found")
    rejected = ev.EligibilityRejected(consultation_id=cid, receipt_no=event.receipt_no, reason="not_a_member")
    await on_review_requested(review, ev.wrap(review, cid), sessions)
    await on_rejected(rejected, ev.wrap(rejected, cid), sessions)
    issued = await outbox_events(sessions, cid, ev.TaskIssued)
    assert sorted((t.kind, t.reason) for t in issued) == [("decline", "not_a_member"), ("review", "member_not_found")]


def rejected_delivery(event, reason: str = "withdrawn_member") -> Delivery:
    rejected = ev.EligibilityRejected(consultation_id=event.consultation_id, receipt_no=event.receipt_no, reason=reason)
    return Delivery(ev.wrap(rejected, event.consultation_id), rejected)


async def test_a_rejection_is_written_once_to_who_asked_for_email_in_kind_words(sessions, desk):
    event, envelope = received()
    await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)
    mailer, delivery = FakeMailer(), rejected_delivery(event)
    await decline([delivery], sessions, mailer, desk)
    await decline([delivery], sessions, mailer, desk)  # redelivered
    assert len(mailer.sent) == 1
    text = plain_text(message_from_bytes(mailer.sent[0].as_bytes(), policy=policy.default))
    assert desk.desk_phone in text and desk.desk_hours in text and "対象外" not in text
    assert mailer.sent[0]["To"] == "hanako@example.jp"
    sent = await outbox_events(sessions, event.consultation_id, ev.EmailSent)
    assert sorted(e.kind for e in sent) == ["acknowledgement", "rejection"]
    assert await outbox_events(sessions, event.consultation_id, ev.TaskIssued) == []


async def test_a_rejection_for_who_asked_for_a_call_is_an_operators_task(sessions, desk):
    """By phone with an address too: a person tells them; a late copy: the task waits for it."""
    by_phone, envelope = received(method="phone")
    await acknowledge([Delivery(envelope, by_phone)], sessions, FakeMailer(), desk)
    late, late_envelope = received()
    mailer = FakeMailer()
    await decline([rejected_delivery(by_phone), rejected_delivery(late, "operator_rejected")], sessions, mailer, desk)
    await acknowledge([Delivery(late_envelope, late)], sessions, FakeMailer(), desk)
    assert mailer.sent == []
    for event, reason in ((by_phone, "withdrawn_member"), (late, "operator_rejected")):
        issued = await outbox_events(sessions, event.consultation_id, ev.TaskIssued)
        assert [(t.kind, t.reason) for t in issued] == [("decline", reason)]


async def test_received_and_scheduled_at_once_issue_each_task_once(sessions, desk):
    """Neither side may miss the other's commit: the task is never left waiting."""
    pairs = []
    for _ in range(8):
        event, envelope = received(email=None, method="phone")
        pairs.append(((event, envelope), scheduled(event.consultation_id)))
    await asyncio.gather(*(
        step for (event, envelope), (call, call_envelope) in pairs for step in (
            acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk),
            on_scheduled(call, call_envelope, sessions),
        )
    ))
    for (event, _), _ in pairs:
        assert len(await outbox_events(sessions, event.consultation_id, ev.TaskIssued)) == 1
    async with sessions() as s:
        ids = [event.consultation_id for (event, _), _ in pairs]
        assert await s.scalar(select(func.count()).select_from(pending).where(pending.c.consultation_id.in_(ids))) == 0


async def test_a_batch_of_receipts_is_acknowledged_over_a_few_reused_smtp_connections(sessions, desk):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    by_mail = [received(email=f"person{n}@example.jp") for n in range(4)]
    by_phone = received(email=None, method="phone")
    republished = ev.Envelope(**{**by_mail[0][1].model_dump(), "event_id": uuid.uuid4()})  # relay sent it twice
    batch = [Delivery(envelope, event) for event, envelope in [*by_mail, by_phone]]
    batch += [Delivery(republished, by_mail[0][0]), batch[1]]  # and a redelivery within the batch
    try:
        mailer = SmtpMailer(desk.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": controller.port,
                                                    "smtp_connections": 2}))
        await acknowledge(batch, sessions, mailer, desk)
        await acknowledge(batch, sessions, mailer, desk)  # the whole batch redelivered
    finally:
        controller.stop()
    assert sorted(to for (to,), _ in inbox.messages) == [f"person{n}@example.jp" for n in range(4)]
    assert len(inbox.peers) == 2, "4 mails over 2 connections, each used twice"
    for event, _ in by_mail:
        assert len(await outbox_events(sessions, event.consultation_id, ev.EmailSent)) == 1
        assert (await notification(sessions, event.consultation_id)).status == "sent"
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(consultations).where(
            consultations.c.consultation_id.in_([d.event.consultation_id for d in batch]))) == 5


async def test_a_refused_mail_in_a_batch_fails_alone(sessions, desk):
    batch = [received(email=f"person{n}@example.jp") for n in range(3)]
    deliveries = [Delivery(envelope, event) for event, envelope in batch]
    mailer, before = RefusingMailer("person1@example.jp"), duplicates()
    with pytest.raises(MailNotSent):  # so the consumer retries each delivery on its own
        await acknowledge(deliveries, sessions, mailer, desk)
    assert sorted(m["To"] for m in mailer.sent) == ["person0@example.jp", "person2@example.jp"]
    statuses = [(await notification(sessions, e.consultation_id)) for e, _ in batch]
    assert [(r.status, r.attempts) for r in statuses] == [("sent", 1), ("sending", 1), ("sent", 1)]
    assert statuses[1].handed_over_at is None  # certainly not taken
    retry = FakeMailer()
    for delivery in deliveries:  # what the consumer does next
        await acknowledge([delivery], sessions, retry, desk)
    assert [m["To"] for m in retry.sent] == ["person1@example.jp"]
    assert duplicates() == before
    assert await duplicates_on_record(sessions, [e.consultation_id for e, _ in batch]) == []


async def test_a_batch_of_schedules_issues_each_task_once_or_waits_for_its_copy(sessions, desk):
    copies = [received(email=None, method="phone") for _ in range(2)]
    for event, envelope in copies:
        await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)
    calls = [scheduled(event.consultation_id) for event, _ in copies]
    early = scheduled(uuid.uuid4())  # its copy has not arrived yet
    batch = [Delivery(envelope, event) for event, envelope in [*calls, early]] + [Delivery(calls[0][1], calls[0][0])]
    await task_cases.order_tasks(batch, sessions, "notifier.scheduled", task_cases.scheduled_order)
    for event, _ in copies:
        assert [t.kind for t in await outbox_events(sessions, event.consultation_id, ev.TaskIssued)] == ["call"]
    assert await outbox_events(sessions, early[0].consultation_id, ev.TaskIssued) == []
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(pending).where(
            pending.c.consultation_id == early[0].consultation_id)) == 1
