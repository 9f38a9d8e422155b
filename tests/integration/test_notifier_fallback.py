"""When the calls do not reach the consultant, on real Postgres (and a real SMTP server): one
fallback e-mail where the copy has an address, one `unreachable` task where it has none; a call
task for each attempt of a booking; one `unschedulable` task per consultation."""
import uuid
from email import message_from_bytes, policy
from datetime import datetime, timedelta, timezone

from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select

from services.notifier import tasks as task_cases
from services.notifier.acknowledging import acknowledge
from services.notifier.fallback import fall_back
from services.notifier.orm import notifications, pending, possible_duplicates, unschedulable_callbacks
from services.notifier.sending import SmtpMailer
from services.notifier.unschedulable import note_unschedulable
from shared import events as ev
from shared.messaging import Delivery
from tests.integration.test_notifier import sessions  # noqa: F401 (the fixture)
from tests.integration.test_notifier import FakeMailer, Inbox, free_port, outbox_events, plain_text, received

SLOT = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)  # Monday 10:00 in Japan


async def with_copy(sessions, desk, email: str | None = "hanako@example.jp") -> ev.ConsultationReceived:
    event, envelope = received(email=email, method="email" if email else "phone")
    await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)
    return event


def exhausted(copy: ev.ConsultationReceived, reason: str = "no_answer_after_last_attempt", attempts: int = 3):
    event = ev.CallbackExhausted(consultation_id=copy.consultation_id, receipt_no=copy.receipt_no,
                                 booking_id=uuid.uuid4(), attempts=attempts, reason=reason)
    return Delivery(ev.wrap(event, copy.consultation_id), event)


def scheduled(consultation_id, booking_id, attempt: int):
    starts = SLOT + timedelta(days=attempt - 1)
    event = ev.CallbackScheduled(consultation_id=consultation_id, receipt_no="PH-261124-00000", booking_id=booking_id,
                                 slot_starts_at=starts, slot_ends_at=starts + timedelta(hours=1), attempt=attempt)
    return Delivery(ev.wrap(event, consultation_id), event)


def republished(delivery: Delivery) -> Delivery:
    """The same event published again by a relay: another event id."""
    return Delivery(ev.wrap(delivery.event, delivery.envelope.correlation_id), delivery.event)


async def fallback_row(sessions, consultation_id):
    async with sessions() as s:
        return (await s.execute(select(notifications).where(
            notifications.c.consultation_id == consultation_id, notifications.c.kind == "callback_fallback"))).one()


async def order_scheduled(sessions, deliveries):
    await task_cases.order_tasks(deliveries, sessions, "notifier.scheduled", task_cases.scheduled_order)


async def test_an_exhausted_consultation_with_an_address_gets_one_fallback_mail(sessions, desk):
    copy = await with_copy(sessions, desk)
    delivery = exhausted(copy)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        mailer = SmtpMailer(desk.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": controller.port}))
        await fall_back([delivery], sessions, mailer, desk)
        await fall_back([delivery], sessions, mailer, desk)  # redelivered
        await fall_back([republished(delivery), delivery], sessions, mailer, desk)
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    (recipients, message), = inbox.messages
    assert recipients == ["hanako@example.jp"]
    assert message["Subject"] == f"【受付番号 {copy.receipt_no}】お電話がつながりませんでした"
    assert message["Message-ID"].strip() == f"<callback_fallback.{copy.consultation_id}@payhara-desk.invalid>"
    body = plain_text(message)
    assert "3回お電話しましたが、つながりませんでした" in body and desk.desk_phone in body
    assert "ご返信" in body and copy.summary not in body and copy.urls[0] not in body
    sent = await outbox_events(sessions, copy.consultation_id, ev.EmailSent)
    assert sorted(e.kind for e in sent) == ["acknowledgement", "callback_fallback"]
    assert (await fallback_row(sessions, copy.consultation_id)).status == "sent"
    assert await outbox_events(sessions, copy.consultation_id, ev.TaskIssued) == []


async def test_a_wrong_number_asks_to_check_the_number(sessions, desk):
    copy = await with_copy(sessions, desk)
    mailer = FakeMailer()
    await fall_back([exhausted(copy, "wrong_number", attempts=1)], sessions, mailer, desk)
    (message,) = mailer.sent
    assert str(message["Subject"]) == f"【受付番号 {copy.receipt_no}】お電話番号をご確認ください"
    text = plain_text(message_from_bytes(message.as_bytes(), policy=policy.default))
    assert "番号が違っているようでした" in text and "回お電話しましたが" not in text


async def test_an_exhausted_consultation_without_an_address_gets_one_unreachable_task(sessions, desk):
    copy = await with_copy(sessions, desk, email=None)
    delivery = exhausted(copy)
    mailer = FakeMailer()
    for again in (delivery, delivery, republished(delivery)):
        await fall_back([again], sessions, mailer, desk)
    assert mailer.sent == []
    issued = await outbox_events(sessions, copy.consultation_id, ev.TaskIssued)
    assert [(t.kind, t.reason, t.receipt_no) for t in issued] == [
        ("unreachable", "no_answer_after_last_attempt", copy.receipt_no)]
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(notifications).where(
            notifications.c.consultation_id == copy.consultation_id, notifications.c.kind == "callback_fallback")) == 0


async def test_a_fallback_handed_over_without_an_outcome_is_reported_when_sent_again(sessions, desk):
    copy = await with_copy(sessions, desk)
    async with sessions.begin() as s:  # what a crash after the send leaves behind
        await s.execute(insert(notifications).values(
            consultation_id=copy.consultation_id, kind="callback_fallback", status="sending", attempts=1,
            handed_over_at=datetime(2026, 11, 30, 5, 0, tzinfo=timezone.utc)))
    mailer = FakeMailer()
    await fall_back([exhausted(copy)], sessions, mailer, desk)
    assert len(mailer.sent) == 1 and (await fallback_row(sessions, copy.consultation_id)).status == "sent"
    async with sessions() as s:
        flagged = (await s.execute(select(possible_duplicates).where(
            possible_duplicates.c.consultation_id == copy.consultation_id))).all()
    assert [(f.kind, f.message_id) for f in flagged] == [
        ("callback_fallback", f"<callback_fallback.{copy.consultation_id}@payhara-desk.invalid>")]


async def test_each_attempt_of_a_booking_gets_its_own_call_task(sessions, desk):
    copy = await with_copy(sessions, desk, email=None)
    booking_id = uuid.uuid4()
    first, second = scheduled(copy.consultation_id, booking_id, 1), scheduled(copy.consultation_id, booking_id, 2)
    await order_scheduled(sessions, [first])
    await order_scheduled(sessions, [second, first])
    await order_scheduled(sessions, [republished(second)])
    issued = sorted(await outbox_events(sessions, copy.consultation_id, ev.TaskIssued), key=lambda t: t.attempt)
    assert [(t.kind, t.attempt, t.booking_id, t.due_starts_at) for t in issued] == [
        ("call", 1, booking_id, SLOT), ("call", 2, booking_id, SLOT + timedelta(days=1))]


async def test_call_tasks_of_two_attempts_wait_for_the_copy_side_by_side(sessions, desk):
    event, envelope = received(email=None, method="phone")
    booking_id = uuid.uuid4()
    await order_scheduled(sessions, [scheduled(event.consultation_id, booking_id, n) for n in (1, 2)])
    async with sessions() as s:
        assert sorted(await s.scalars(select(pending.c.attempt).where(
            pending.c.consultation_id == event.consultation_id))) == [1, 2]
    await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)
    issued = await outbox_events(sessions, event.consultation_id, ev.TaskIssued)
    assert sorted((t.kind, t.attempt) for t in issued) == [("call", 1), ("call", 2)]


async def test_an_unschedulable_callback_issues_one_operator_task(sessions, desk):
    copy = await with_copy(sessions, desk, email=None)
    event = ev.CallbackUnschedulable(consultation_id=copy.consultation_id, receipt_no=copy.receipt_no,
                                     reason="no_free_slot_within_horizon")
    delivery = Delivery(ev.wrap(event, copy.consultation_id), event)
    for again in (delivery, delivery, republished(delivery)):
        await note_unschedulable([again], sessions)
    issued = await outbox_events(sessions, copy.consultation_id, ev.TaskIssued)
    assert [(t.kind, t.reason) for t in issued] == [("unschedulable", "no_free_slot_within_horizon")]
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(unschedulable_callbacks).where(
            unschedulable_callbacks.c.consultation_id == copy.consultation_id)) == 1
