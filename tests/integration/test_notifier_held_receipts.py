"""Receipts held for their booking (receipt_hold_s), on real Postgres: a receipt that is not
urgent waits for the first booking and goes with it, one mail telling both; it goes plain when
its time is up, before a rejection, and at once when urgent or already late; a redelivery or a
second look never sends it twice."""
import uuid
from datetime import datetime, timedelta, timezone

from services.notifier.acknowledging import acknowledge, send_held
from services.notifier.booked import booked
from services.notifier.declining import decline
from shared import events as ev
from shared.messaging import Delivery
from tests.integration.test_notifier import sessions  # noqa: F401 (the fixture)
from tests.integration.test_notifier import FakeMailer, received, rejected_delivery
from tests.integration.test_notifier_booked import SOON, notifications_of, scheduled, text_of, window

HOLD_S = 5.0


def held(desk):
    return desk.model_copy(update={"receipt_hold_s": HOLD_S})


def receipt_now(urgent: bool = False, at: datetime | None = None, **contact) -> Delivery:
    """A consultation received just now (or `at`), as intake publishes it, with an address of
    its own (a look at every held receipt may find other tests' too)."""
    event, _ = received(**{"email": f"held-{uuid.uuid4().hex[:8]}@example.jp", **contact})
    event = event.model_copy(update={"received_at": at or datetime.now(timezone.utc), "urgent": urgent})
    return Delivery(ev.wrap(event, event.consultation_id), event)


def kinds(mailer: FakeMailer, to: Delivery) -> list[str]:
    """The kinds of the mails sent to this consultant, in order."""
    return [m["Message-ID"].split(".", 1)[0].lstrip("<") for m in mailer.sent if m["To"] == to.event.contact.email]


async def test_a_receipt_waits_for_its_booking_and_one_mail_tells_both(sessions, desk):
    settings, mailer = held(desk), FakeMailer()
    receipt = receipt_now(method="phone")
    await acknowledge([receipt, receipt], sessions, mailer, settings)  # and a redelivery
    assert mailer.sent == []
    assert await notifications_of(sessions, receipt.event.consultation_id) == {("acknowledgement", 1): "sending"}
    await booked([scheduled(receipt.event.consultation_id)], sessions, mailer, settings)
    await acknowledge([receipt], sessions, mailer, settings)  # redelivered after it went
    await send_held(sessions, mailer, settings, now=datetime.now(timezone.utc) + timedelta(hours=1))  # and a look
    assert kinds(mailer, receipt) == ["acknowledgement"] and window(SOON) in text_of(mailer.sent[0])
    assert await notifications_of(sessions, receipt.event.consultation_id) == {
        ("acknowledgement", 1): "sent", ("callback_booked", 1): "sent"}


async def test_a_receipt_whose_booking_does_not_come_goes_plain_when_its_time_is_up(sessions, desk):
    settings, mailer = held(desk), FakeMailer()
    receipt = receipt_now(method="phone")  # its consultation goes to a review, say
    await acknowledge([receipt], sessions, mailer, settings)
    await send_held(sessions, mailer, settings, now=datetime.now(timezone.utc))
    assert kinds(mailer, receipt) == [], "not before its time"
    await send_held(sessions, mailer, settings, now=datetime.now(timezone.utc) + timedelta(seconds=HOLD_S + 1))
    (plain,) = [m for m in mailer.sent if m["To"] == receipt.event.contact.email]
    assert "あらためてメールでお知らせします" in text_of(plain)
    await booked([scheduled(receipt.event.consultation_id)], sessions, mailer, settings)  # the review took a day
    assert kinds(mailer, receipt) == ["acknowledgement", "callback_booked"]


async def test_an_urgent_receipt_or_one_already_late_goes_at_once(sessions, desk):
    settings, mailer = held(desk), FakeMailer()
    urgent = receipt_now(urgent=True, email="urgent@example.jp")
    late = receipt_now(at=datetime.now(timezone.utc) - timedelta(seconds=HOLD_S + 1), email="late@example.jp")
    await acknowledge([urgent, late], sessions, mailer, settings)
    assert sorted(m["To"] for m in mailer.sent) == ["late@example.jp", "urgent@example.jp"]
    assert "110番" in text_of(next(m for m in mailer.sent if m["To"] == "urgent@example.jp"))


async def test_a_held_receipt_goes_before_the_rejection(sessions, desk):
    settings, mailer = held(desk), FakeMailer()
    receipt = receipt_now(method="email")
    await acknowledge([receipt], sessions, mailer, settings)
    await decline([rejected_delivery(receipt.event)], sessions, mailer, settings)
    assert kinds(mailer, receipt) == ["acknowledgement", "rejection"]
