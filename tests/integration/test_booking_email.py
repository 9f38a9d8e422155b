"""Replies by e-mail on the real database: due on an open day within the day's own e-mail
capacity, never in a call slot, the next open day when a day is full; a call outcome for such a
booking changes nothing."""
import uuid
from datetime import date, datetime

from sqlalchemy import func, select

from services.scheduler.attempts import record_outcomes
from services.scheduler.booking import book_callbacks
from services.scheduler.orm import bookings, email_days, slots
from shared import events as ev
from shared.calendar import JST
from shared.messaging import Delivery
from tests.integration import test_booking
from tests.integration.test_booking import NOW, PROMISED, outbox_events

scheduler = test_booking.scheduler  # the fixture: an empty scheduler schema


def confirmed(n: int, method: str = "email") -> Delivery[ev.EligibilityConfirmed]:
    event = ev.EligibilityConfirmed(consultation_id=uuid.uuid4(), receipt_no=f"PH-261120-{n:05d}", reason="member",
                                    contact_expected_from=PROMISED, contact_method=method, preferred_time="morning")
    return Delivery(ev.wrap(event, event.consultation_id), event)


async def scheduled(sessions) -> dict[uuid.UUID, ev.CallbackScheduled]:
    return {e.correlation_id: ev.CallbackScheduled.model_validate(e.data) for e in await outbox_events(sessions)
            if e.event_type == ev.CallbackScheduled.routing_key}


async def test_replies_by_email_are_due_on_a_day_within_its_email_capacity_and_take_no_call_seat(scheduler):
    sessions, settings = scheduler
    two_a_day = settings.model_copy(update={"email_capacity_per_day": 2})
    mails = [confirmed(n) for n in range(3)]
    call = confirmed(9, "phone")
    await book_callbacks([*mails, call], sessions, two_a_day, now=NOW)
    found = await scheduled(sessions)
    replies = [found[d.event.consultation_id] for d in mails]
    assert [r.by_email for r in replies] == [True] * 3 and found[call.event.consultation_id].by_email is False
    assert [(r.slot_starts_at.astimezone(JST), r.slot_ends_at.astimezone(JST)) for r in replies] == (
        [(datetime(2026, 11, 24, 9, tzinfo=JST), datetime(2026, 11, 24, 18, tzinfo=JST))] * 2
        + [(datetime(2026, 11, 25, 9, tzinfo=JST), datetime(2026, 11, 25, 18, tzinfo=JST))])
    async with sessions() as s:
        assert (await s.execute(select(email_days.c.day, email_days.c.capacity, email_days.c.booked)
                                .order_by(email_days.c.day))).all() == [(PROMISED, 2, 2), (date(2026, 11, 25), 2, 1)]
        assert await s.scalar(select(func.sum(slots.c.booked))) == 1  # the phone call's seat only
        assert await s.scalar(select(func.count()).select_from(bookings).where(bookings.c.email_day.is_not(None))) == 3


async def test_a_call_outcome_for_a_reply_by_email_changes_nothing(scheduler, caplog):
    sessions, settings = scheduler
    mail = confirmed(1)
    await book_callbacks([mail], sessions, settings, now=NOW)
    async with sessions() as s:
        booking = (await s.execute(select(bookings))).one()
    outcome = ev.CallOutcomeRecorded(consultation_id=booking.consultation_id, receipt_no=booking.receipt_no,
                                     booking_id=booking.id, attempt=1, outcome="no_answer", operator_id="op-7",
                                     note_length=0, recorded_at=NOW)
    await record_outcomes([Delivery(ev.wrap(outcome, booking.consultation_id), outcome)], sessions, settings, now=NOW)
    async with sessions() as s:
        assert (await s.execute(select(bookings.c.status, bookings.c.attempt))).one() == ("live", 1)
    assert len(await outbox_events(sessions)) == 1
    assert f"booking by e-mail ignored: booking={booking.id}" in caplog.text


async def test_replies_by_email_filling_a_day_move_their_own_first_free_day_not_the_calls(scheduler):
    sessions, settings = scheduler
    three_a_day = settings.model_copy(update={"email_capacity_per_day": 3, "availability_margin": 2})
    today = NOW.date()  # Friday 20 Nov, 10:00: same-day contact; Monday 23 Nov is a holiday
    mail = confirmed(1)
    mail = Delivery(mail.envelope, mail.event.model_copy(update={"contact_expected_from": today}))
    await book_callbacks([mail], sessions, three_a_day, now=NOW)
    (word,) = [ev.ScheduleAvailabilityChanged.model_validate(e.data)
               for e in await outbox_events(sessions, with_availability=True)
               if e.event_type == ev.ScheduleAvailabilityChanged.routing_key]
    # one reply booked leaves 2, the margin: the day is kept for those already promised it
    assert (word.first_free_email_day, word.first_free_day, word.busy) == (date(2026, 11, 24), today, False)
