"""The booked-callback mail on real Postgres: a consultant who gave an e-mail address is told
when the desk will call (or by which day it will reply), once per consultation and attempt,
whatever the order of arrival; never about a slot already over; the call task as before."""
import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from services.notifier.acknowledging import acknowledge
from services.notifier.booked import booked
from services.notifier.orm import notifications
from services.notifier.sending import SmtpUnreachable
from shared import events as ev
from shared.calendar import to_japan
from shared.messaging import Delivery
from tests.integration.test_notifier import sessions  # noqa: F401 (the fixture)
from tests.integration.test_notifier import FakeMailer, outbox_events, plain_text, received

SOON = (datetime.now(timezone.utc) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def scheduled(consultation_id, attempt: int = 1, starts: datetime = SOON, booking_id=None, minutes: int = 30):
    event = ev.CallbackScheduled(consultation_id=consultation_id, receipt_no="PH-261124-00000",
                                 booking_id=booking_id or uuid.uuid4(), slot_starts_at=starts,
                                 slot_ends_at=starts + timedelta(minutes=minutes), attempt=attempt)
    return Delivery(ev.wrap(event, consultation_id), event)


def republished(delivery: Delivery) -> Delivery:
    return Delivery(ev.wrap(delivery.event, delivery.envelope.correlation_id), delivery.event)


async def with_copy(sessions, desk, **contact) -> ev.ConsultationReceived:
    event, envelope = received(**contact)
    await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)
    return event


async def notifications_of(sessions, consultation_id) -> dict:
    async with sessions() as s:
        rows = (await s.execute(select(notifications).where(notifications.c.consultation_id == consultation_id))).all()
    return {(row.kind, row.attempt): row.status for row in rows}


def text_of(message) -> str:
    return plain_text(message_from_bytes(message.as_bytes(), policy=policy.default))


def window(starts: datetime) -> str:
    local, end = to_japan(starts), to_japan(starts + timedelta(minutes=30))
    return f"{local.month}月{local.day}日（{'月火水木金土日'[local.weekday()]}）{local:%H:%M}〜{end:%H:%M} ごろ"


async def test_a_booked_call_is_told_once_per_attempt(sessions, desk):
    copy = await with_copy(sessions, desk, method="phone")  # a call, with an address to write to
    first = scheduled(copy.consultation_id)
    mailer = FakeMailer()
    for delivery in (first, first, republished(first)):
        await booked([delivery], sessions, mailer, desk)
    (told,) = mailer.sent
    assert told["Message-ID"] == f"<callback_booked.{copy.consultation_id}@payhara-desk.invalid>"
    assert window(SOON) in text_of(told) and "つながりませんでした" not in text_of(told)

    second = scheduled(copy.consultation_id, attempt=2, starts=SOON + timedelta(hours=3),
                       booking_id=first.event.booking_id)
    await booked([second, first], sessions, mailer, desk)
    await booked([second], sessions, mailer, desk)
    assert [m["Message-ID"] for m in mailer.sent[1:]] == [
        f"<callback_booked.{copy.consultation_id}.2@payhara-desk.invalid>"]
    assert "つながりませんでした" in text_of(mailer.sent[1]) and window(SOON + timedelta(hours=3)) in text_of(mailer.sent[1])
    tasks = await outbox_events(sessions, copy.consultation_id, ev.TaskIssued)
    assert sorted((t.kind, t.attempt) for t in tasks) == [("call", 1), ("call", 2)]
    sent = await outbox_events(sessions, copy.consultation_id, ev.EmailSent)
    assert sorted(e.kind for e in sent) == ["acknowledgement", "callback_booked", "callback_booked"]


async def test_a_reply_by_email_is_told_by_its_day(sessions, desk):
    copy = await with_copy(sessions, desk)  # contact by e-mail: the booking is a reply due that day
    mailer = FakeMailer()
    await booked([scheduled(copy.consultation_id, minutes=540)], sessions, mailer, desk)
    (told,) = mailer.sent
    local = to_japan(SOON)
    assert f"{local.month}月{local.day}日" in text_of(told) and "メールでご連絡します" in text_of(told)
    assert "お電話します" not in text_of(told)


async def test_no_address_no_mail_but_the_call_task(sessions, desk):
    copy = await with_copy(sessions, desk, email=None, method="phone")
    mailer = FakeMailer()
    await booked([scheduled(copy.consultation_id)], sessions, mailer, desk)
    assert mailer.sent == []
    assert [t.kind for t in await outbox_events(sessions, copy.consultation_id, ev.TaskIssued)] == ["call"]


async def test_a_booking_known_as_the_receipt_is_written_is_told_in_the_receipt_alone(sessions, desk):
    event, envelope = received(method="phone")
    mailer = FakeMailer()
    await booked([scheduled(event.consultation_id)], sessions, mailer, desk)  # the copy is late
    assert mailer.sent == []
    await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)
    await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)  # redelivered
    await booked([scheduled(event.consultation_id)], sessions, mailer, desk)  # and the booking again
    (receipt,) = mailer.sent
    assert receipt["Message-ID"] == f"<acknowledgement.{event.consultation_id}@payhara-desk.invalid>"
    assert window(SOON) in text_of(receipt) and "あらためてメールでお知らせします" not in text_of(receipt)
    (sent,) = await outbox_events(sessions, event.consultation_id, ev.EmailSent)
    assert (sent.kind, sent.message_id, sent.also_told) == ("acknowledgement", receipt["Message-ID"], ["callback_booked"])
    rows = await notifications_of(sessions, event.consultation_id)
    assert rows == {("acknowledgement", 1): "sent", ("callback_booked", 1): "sent"}


async def test_a_receipt_that_did_not_go_tells_the_booking_when_it_goes(sessions, desk):
    event, envelope = received(method="phone")
    await booked([scheduled(event.consultation_id)], sessions, FakeMailer(), desk)  # the copy is late
    with pytest.raises(SmtpUnreachable):  # the copy issued the call task; the receipt did not leave
        await acknowledge([Delivery(envelope, event)], sessions,
                          FakeMailer(fail_with=SmtpUnreachable("the SMTP server went away")), desk)
    mailer = FakeMailer()
    await acknowledge([Delivery(envelope, event)], sessions, mailer, desk)  # tried again
    (receipt,) = mailer.sent
    assert receipt["Message-ID"].startswith("<acknowledgement") and window(SOON) in text_of(receipt)
    assert [t.kind for t in await outbox_events(sessions, event.consultation_id, ev.TaskIssued)] == ["call"]


class BookedMailFails(FakeMailer):
    def fails(self, message) -> bool:
        return message["Message-ID"].startswith("<callback_booked")


async def test_a_booking_whose_mail_did_not_go_is_told_on_the_acknowledgement_s_redelivery(sessions, desk):
    copy = await with_copy(sessions, desk, method="phone")  # the receipt went before the booking
    failing = BookedMailFails(fail_with=SmtpUnreachable("the SMTP server went away"))
    with pytest.raises(SmtpUnreachable):
        await booked([scheduled(copy.consultation_id)], sessions, failing, desk)
    mailer = FakeMailer()
    await acknowledge([Delivery(ev.wrap(copy, copy.consultation_id), copy)], sessions, mailer, desk)  # redelivered
    assert [m["Message-ID"].split(".", 1)[0] for m in mailer.sent] == ["<callback_booked"]


class HeldAtTheServer(FakeMailer):
    """A server that holds each mail until told to take it (or a second has passed)."""

    def __init__(self):
        super().__init__()
        self.holding, self.take = asyncio.Event(), asyncio.Event()

    async def send(self, message):
        self.holding.set()
        try:
            await asyncio.wait_for(self.take.wait(), 1.0)
        except TimeoutError:
            pass
        return await super().send(message)


async def test_a_booking_redelivered_while_its_receipt_is_sent_is_not_told_again(sessions, desk):
    event, envelope = received(method="phone")
    booking = scheduled(event.consultation_id)
    await booked([booking], sessions, FakeMailer(), desk)  # the copy is late
    server, other = HeldAtTheServer(), FakeMailer()
    receipt = asyncio.create_task(acknowledge([Delivery(envelope, event)], sessions, server, desk))
    await asyncio.wait_for(server.holding.wait(), 10)  # the receipt, telling the booking, is on its way
    again = asyncio.create_task(booked([republished(booking)], sessions, other, desk))
    await asyncio.wait([again], timeout=0.5)  # it waits for the receipt's locks
    server.take.set()
    await asyncio.gather(receipt, again)
    assert [m["Message-ID"].split(".", 1)[0] for m in server.sent + other.sent] == ["<acknowledgement"]
    assert window(SOON) in text_of(server.sent[0])


async def test_a_receipt_and_its_booking_at_the_same_moment_tell_the_call_once(sessions, desk):
    """Many consultations whose receipt and booking arrive together, on two instances at once:
    the call's window reaches each consultant exactly once, in the receipt or in its own mail."""
    pairs = [received(method="phone") for _ in range(12)]
    mailer = FakeMailer(delay_s=0.01)
    await asyncio.gather(
        acknowledge([Delivery(envelope, event) for event, envelope in pairs], sessions, mailer, desk),
        booked([scheduled(event.consultation_id) for event, _ in pairs], sessions, mailer, desk))
    await asyncio.gather(  # whatever the first round left to tell (a booking before its copy)
        acknowledge([Delivery(envelope, event) for event, envelope in pairs], sessions, mailer, desk),
        booked([scheduled(event.consultation_id) for event, _ in pairs], sessions, mailer, desk))
    for event, _ in pairs:
        mine = [m for m in mailer.sent if str(event.consultation_id) in m["Message-ID"]]
        assert sum(window(SOON) in text_of(m) for m in mine) == 1, [m["Message-ID"] for m in mine]
        assert sum(m["Message-ID"].startswith("<acknowledgement") for m in mine) == 1


async def test_a_slot_already_over_is_not_told(sessions, desk):
    copy = await with_copy(sessions, desk, method="phone")
    mailer = FakeMailer()
    past = datetime.now(timezone.utc) - timedelta(hours=2)
    await booked([scheduled(copy.consultation_id, starts=past)], sessions, mailer, desk)
    assert mailer.sent == []
    assert [t.kind for t in await outbox_events(sessions, copy.consultation_id, ev.TaskIssued)] == ["call"]


async def test_a_first_reply_due_on_the_promised_day_is_not_told_again(sessions, desk):
    event, envelope = received()  # contact by e-mail
    event = event.model_copy(update={"contact_expected_from": to_japan(SOON).date()})
    await acknowledge([Delivery(envelope, event)], sessions, FakeMailer(), desk)  # it said that day
    mailer = FakeMailer()
    await booked([scheduled(event.consultation_id, minutes=540)], sessions, mailer, desk)
    assert mailer.sent == []  # nothing new to say
    assert [t.kind for t in await outbox_events(sessions, event.consultation_id, ev.TaskIssued)] == ["email"]
