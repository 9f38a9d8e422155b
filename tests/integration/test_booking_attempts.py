"""Call outcomes on the real database: a no-answer books the next attempt two hours later at the
earliest, in open hours on an open day, never over a slot's capacity; the last no-answer or a
wrong number gives up with callback.exhausted.v1; `reached` closes; each outcome has one effect,
and an outcome for an attempt that is not the live one is ignored."""
import asyncio
import logging
import uuid
from types import SimpleNamespace
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone

import aio_pika
from sqlalchemy import func, select

from services.scheduler import handlers
from services.scheduler.attempts import CONSUMER, record_outcomes
from services.scheduler.booking import NO_FREE_SLOT, book_callbacks
from services.scheduler.orm import attempts, bookings, inbox
from shared import events as ev
from shared.calendar import JST, is_business_day, to_japan
from shared.db import make_engine, make_sessions
from shared.messaging import Consumers, Delivery
from shared.topology import queue_name
from tests.support import publish_envelopes
from tests.integration import test_booking
from tests.integration.test_booking import NOW, confirmed, outbox_events, slot_table

scheduler = test_booking.scheduler  # the fixture: an empty scheduler schema
FRIDAY = date(2026, 11, 27)
MONDAY, TUESDAY = date(2026, 11, 30), date(2026, 12, 1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=JST)


async def book(sessions, settings, promised: date = FRIDAY, n: int = 0):
    """A consultation booked at its first attempt; returns its booking row."""
    delivery = confirmed(n, promised)
    await book_callbacks([delivery], sessions, settings, now=NOW)
    return await booking_of(sessions, delivery.event.consultation_id)


async def booking_of(sessions, consultation_id):
    async with sessions() as s:
        return (await s.execute(select(bookings).where(bookings.c.consultation_id == consultation_id))).one()


def outcome(booking, attempt: int, what: str, recorded_at: datetime) -> Delivery[ev.CallOutcomeRecorded]:
    event = ev.CallOutcomeRecorded(
        consultation_id=booking.consultation_id, receipt_no=booking.receipt_no, booking_id=booking.id,
        attempt=attempt, outcome=what, operator_id="op-7", note_length=12, recorded_at=recorded_at)
    return Delivery(ev.wrap(event, booking.consultation_id), event)


async def call(sessions, settings, booking, attempt: int, what: str, recorded_at: datetime) -> Delivery:
    """The operator records the outcome of a call, and the scheduler applies it at once."""
    delivery = outcome(booking, attempt, what, recorded_at)
    await record_outcomes([delivery], sessions, settings, now=recorded_at)
    return delivery


async def news(sessions, event_type: type[ev.Event]) -> list:
    return [event_type.model_validate(e.data) for e in await outbox_events(sessions)
            if e.event_type == event_type.routing_key]


async def attempt_rows(sessions, booking_id) -> list:
    async with sessions() as s:
        return (await s.execute(select(attempts).where(attempts.c.booking_id == booking_id)
                                .order_by(attempts.c.attempt))).all()


def in_open_hours(starts: datetime, ends: datetime) -> bool:
    start, end = to_japan(starts), to_japan(ends)
    return (is_business_day(start.date()) and start.date() == end.date()
            and start.time() >= time(9) and end.time() <= time(18))


async def test_no_answers_across_a_weekend_then_the_last_one_exhausts(scheduler):
    sessions, settings = scheduler
    booking = await book(sessions, settings)
    calls = [(1, at(FRIDAY, 16, 30)), (2, at(MONDAY, 11, 0)), (3, at(MONDAY, 14, 30))]
    for attempt, recorded_at in calls:
        await call(sessions, settings, booking, attempt, "no_answer", recorded_at)
    scheduled = await news(sessions, ev.CallbackScheduled)
    # Friday 18:30 is after the last slot: not Saturday or Sunday but Monday's first slot; then
    # Monday 13:00, exactly two hours on; the third no-answer is the last
    assert [(s.attempt, to_japan(s.slot_starts_at)) for s in scheduled] == [
        (1, at(FRIDAY, 9)), (2, at(MONDAY, 9)), (3, at(MONDAY, 13))]
    assert all(in_open_hours(s.slot_starts_at, s.slot_ends_at) for s in scheduled)
    assert all(s.booking_id == booking.id for s in scheduled)
    for (_, recorded_at), retry in zip(calls, scheduled[1:]):
        assert retry.slot_starts_at >= recorded_at + timedelta(hours=2)
    (exhausted,) = await news(sessions, ev.CallbackExhausted)
    assert (exhausted.booking_id, exhausted.attempts) == (booking.id, 3)
    assert exhausted.reason == "no_answer_after_last_attempt"
    assert (await outbox_events(sessions))[-1].event_type == "callback.exhausted.v1"
    closed = await booking_of(sessions, booking.consultation_id)
    assert (closed.status, closed.attempt, closed.closed_at) == ("exhausted", 3, at(MONDAY, 14, 30))
    assert [(r.attempt, r.outcome) for r in await attempt_rows(sessions, booking.id)] == [
        (1, "no_answer"), (2, "no_answer"), (3, "no_answer")]
    assert sum(r.booked for r in await slot_table(sessions)) == 3  # one seat per attempt


async def test_a_day_with_only_earlier_slots_left_is_skipped(scheduler):
    sessions, settings = scheduler
    booking = await book(sessions, settings, promised=MONDAY)
    await call(sessions, settings, booking, 1, "no_answer", at(MONDAY, 16, 0))
    (_, retry) = await news(sessions, ev.CallbackScheduled)
    assert to_japan(retry.slot_starts_at) == at(TUESDAY, 9)  # Monday's last slot, 17:30, starts before 18:00


async def test_a_call_recorded_before_its_slot_books_the_next_attempt_after_that_slot(scheduler):
    sessions, settings = scheduler
    booking = await book(sessions, settings)  # Friday 9:00-9:30
    await call(sessions, settings, booking, 1, "no_answer", at(FRIDAY, 6, 30))  # two hours on: 8:30
    (_, retry) = await news(sessions, ev.CallbackScheduled)
    assert to_japan(retry.slot_starts_at) == at(FRIDAY, 9, 30)


async def test_reached_closes_the_booking_and_publishes_nothing(scheduler):
    sessions, settings = scheduler
    booking = await book(sessions, settings)
    await call(sessions, settings, booking, 1, "reached", at(FRIDAY, 10, 20))
    closed = await booking_of(sessions, booking.consultation_id)
    assert (closed.status, closed.attempt, closed.closed_at) == ("reached", 1, at(FRIDAY, 10, 20))
    assert [e.event_type for e in await outbox_events(sessions)] == ["callback.scheduled.v1"]  # the first booking's
    assert [r.outcome for r in await attempt_rows(sessions, booking.id)] == ["reached"]


async def test_a_wrong_number_exhausts_at_once(scheduler):
    sessions, settings = scheduler
    booking = await book(sessions, settings)
    await call(sessions, settings, booking, 1, "wrong_number", at(FRIDAY, 10, 5))
    (exhausted,) = await news(sessions, ev.CallbackExhausted)
    assert (exhausted.attempts, exhausted.reason, exhausted.receipt_no) == (1, "wrong_number", booking.receipt_no)
    assert len(await news(sessions, ev.CallbackScheduled)) == 1
    assert (await booking_of(sessions, booking.consultation_id)).status == "exhausted"


async def test_the_same_outcome_twice_has_one_effect(scheduler):
    sessions, settings = scheduler
    booking = await book(sessions, settings)
    first = outcome(booking, 1, "no_answer", at(FRIDAY, 10, 30))
    again = outcome(booking, 1, "no_answer", at(FRIDAY, 10, 31))  # another event for the same attempt
    await record_outcomes([first], sessions, settings, now=at(FRIDAY, 10, 30))
    await record_outcomes([first], sessions, settings, now=at(FRIDAY, 10, 30))  # redelivered
    await record_outcomes([again, first], sessions, settings, now=at(FRIDAY, 10, 31))
    assert [s.attempt for s in await news(sessions, ev.CallbackScheduled)] == [1, 2]
    assert len(await attempt_rows(sessions, booking.id)) == 1
    assert sum(r.booked for r in await slot_table(sessions)) == 2
    assert (await booking_of(sessions, booking.consultation_id)).attempt == 2


async def test_two_outcomes_for_one_attempt_in_one_batch_move_the_booking_once(scheduler):
    sessions, settings = scheduler
    booking = await book(sessions, settings)
    batch = [outcome(booking, 1, "no_answer", at(FRIDAY, 10, 30)),
             outcome(booking, 1, "reached", at(FRIDAY, 10, 40))]
    await record_outcomes(batch, sessions, settings, now=at(FRIDAY, 10, 40))
    assert [r.outcome for r in await attempt_rows(sessions, booking.id)] == ["no_answer"]  # the first recorded
    assert (await booking_of(sessions, booking.consultation_id)).attempt == 2


async def test_an_outcome_for_an_old_attempt_or_an_unknown_booking_is_ignored(scheduler, caplog):
    caplog.set_level(logging.INFO, logger="payhara.scheduler")
    sessions, settings = scheduler
    booking = await book(sessions, settings)
    await call(sessions, settings, booking, 1, "no_answer", at(FRIDAY, 10, 30))
    late = await call(sessions, settings, booking, 1, "reached", at(FRIDAY, 11))  # attempt 2 is the live one now
    elsewhere = SimpleNamespace(**{**booking._asdict(), "id": uuid.uuid4()})
    unknown = await call(sessions, settings, elsewhere, 1, "reached", at(FRIDAY, 11))
    moved = await booking_of(sessions, booking.consultation_id)
    assert (moved.status, moved.attempt) == ("live", 2)
    assert len(await attempt_rows(sessions, booking.id)) == 1
    assert len(await outbox_events(sessions)) == 2
    assert f"not the live attempt: booking={booking.id}" in caplog.text and str(late.envelope.event_id) in caplog.text
    assert str(unknown.envelope.event_id) in caplog.text
    assert "op-7" not in caplog.text  # ids of the booking and event only


async def test_a_retry_takes_no_seat_of_a_full_slot(scheduler):
    sessions, settings = scheduler
    one_seat = settings.model_copy(update={"slot_capacity": 1})
    booking = await book(sessions, one_seat)
    for n in range(1, 3):  # Monday 9:00 and 9:30 taken by first bookings
        await book(sessions, one_seat, promised=MONDAY, n=n)
    await call(sessions, one_seat, booking, 1, "no_answer", at(FRIDAY, 16, 30))
    retry = (await news(sessions, ev.CallbackScheduled))[-1]
    assert (retry.attempt, to_japan(retry.slot_starts_at)) == (2, at(MONDAY, 10))
    assert all(r.booked <= r.capacity == 1 for r in await slot_table(sessions))


async def test_no_slot_for_the_next_attempt_up_to_the_furthest_day_is_unschedulable(scheduler):
    sessions, settings = scheduler
    two_days = settings.model_copy(update={"slot_capacity": 1, "booking_horizon_days": 2, "booking_furthest_days": 2})
    booking = await book(sessions, two_days)
    for n in range(1, 19):  # Monday full
        await book(sessions, two_days, promised=MONDAY, n=n)
    # Friday after hours, then Monday: the two days of the horizon, both without a seat
    await call(sessions, two_days, booking, 1, "no_answer", at(FRIDAY, 16, 30))
    (refused,) = await news(sessions, ev.CallbackUnschedulable)
    assert (refused.consultation_id, refused.reason) == (booking.consultation_id, NO_FREE_SLOT)
    closed = await booking_of(sessions, booking.consultation_id)
    assert (closed.status, closed.attempt, closed.slot_id) == ("unschedulable", 1, booking.slot_id)
    assert [s.attempt for s in await news(sessions, ev.CallbackScheduled)] == [1] * 19
    assert all(r.booked <= r.capacity for r in await slot_table(sessions))


async def test_racing_retries_and_first_bookings_never_overbook_nor_deadlock(scheduler):
    # Four instances at once: no-answers of Friday afternoon retrying from Monday 10:00 on, and
    # consultations promised Monday booking their first call. Capacity 2, so they all compete
    # for Monday's first slots; a deadlock or a lock wait past LOCK_WAIT fails the gather.
    sessions, settings = scheduler
    tight = settings.model_copy(update={"slot_capacity": 2})
    first = [await book(sessions, tight, promised=FRIDAY, n=n) for n in range(12)]  # Friday: the first six slots
    outcomes = [outcome(b, 1, "no_answer", at(FRIDAY, 16, 30) + timedelta(seconds=n))
                for n, b in enumerate(first)]
    new = [confirmed(100 + n, MONDAY) for n in range(12)]
    engines = [make_engine(settings, pool_size=6) for _ in range(4)]
    instances = [make_sessions(e) for e in engines]
    work = [outcomes[i:i + 3] for i in range(0, 12, 3)] + [new[i:i + 3] for i in range(0, 12, 3)]
    try:
        await asyncio.gather(*(
            (record_outcomes(batch, instances[i % 4], tight, now=at(FRIDAY, 17)) if i < 4
             else book_callbacks(batch, instances[i % 4], tight, now=NOW))
            for i, batch in enumerate(work)))
    finally:
        for engine in engines:
            await engine.dispose()
    table = await slot_table(sessions)
    # Friday's first calls, then Monday's first 24 seats: full, none over, none skipped
    assert [(to_japan(r.starts_at).date(), r.booked) for r in table] == (
        [(FRIDAY, 2)] * 6 + [(FRIDAY, 0)] * 12 + [(MONDAY, 2)] * 12 + [(MONDAY, 0)] * 6)
    retries = [s for s in await news(sessions, ev.CallbackScheduled) if s.attempt == 2]
    assert Counter(s.booking_id for s in retries) == {b.id: 1 for b in first}
    assert all(s.slot_starts_at >= at(MONDAY, 9) for s in retries)
    assert all(in_open_hours(s.slot_starts_at, s.slot_ends_at) for s in retries)
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(attempts)) == 12
        assert await s.scalar(select(func.count()).select_from(bookings)) == 24


async def test_an_outcome_delivered_twice_by_the_broker_moves_the_booking_once(scheduler):
    # the real consumer on the real RabbitMQ: the relay published the outcome twice (same event
    # id), and the console sent a second event for the same attempt
    sessions, settings = scheduler
    booking = await book(sessions, settings)
    recorded_at = datetime.now(timezone.utc)
    first = outcome(booking, 1, "no_answer", recorded_at)
    second = outcome(booking, 1, "no_answer", recorded_at + timedelta(seconds=5))
    consumers = Consumers(settings, "scheduler")
    consumers.include(handlers.subscriptions, SimpleNamespace(sessions=sessions, settings=settings))
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.get_queue(queue_name("scheduler", ev.CallOutcomeRecorded))
        await queue.purge()
        await consumers.start()
        await publish_envelopes(channel, (first.envelope, first.envelope, second.envelope),
                                ev.CallOutcomeRecorded.routing_key)
        for _ in range(200):  # both event ids handled
            async with sessions() as s:
                if await s.scalar(select(func.count()).select_from(inbox).where(inbox.c.consumer == CONSUMER)) == 2:
                    break
            await asyncio.sleep(0.05)
    finally:
        await consumers.stop()
        await connection.close()
    assert len(await attempt_rows(sessions, booking.id)) == 1
    retries = [s for s in await news(sessions, ev.CallbackScheduled) if s.attempt == 2]
    assert len(retries) == 1 and retries[0].slot_starts_at >= recorded_at + timedelta(hours=2)
    assert in_open_hours(retries[0].slot_starts_at, retries[0].slot_ends_at)
    assert (await booking_of(sessions, booking.consultation_id)).attempt == 2


async def test_a_retry_past_a_full_horizon_is_booked_further_out_and_flagged(scheduler):
    sessions, settings = scheduler
    two_days = settings.model_copy(update={"slot_capacity": 1, "booking_horizon_days": 2, "booking_furthest_days": 3})
    booking = await book(sessions, two_days)
    for n in range(1, 19):  # Monday full
        await book(sessions, two_days, promised=MONDAY, n=n)
    await call(sessions, two_days, booking, 1, "no_answer", at(FRIDAY, 16, 30))
    retry = (await news(sessions, ev.CallbackScheduled))[-1]
    assert (retry.attempt, to_japan(retry.slot_starts_at), retry.beyond_horizon) == (2, at(TUESDAY, 9), True)
    assert not any(s.beyond_horizon for s in (await news(sessions, ev.CallbackScheduled))[:-1])


async def book_as(sessions, settings, n: int, promised: date = MONDAY, **kind):
    """A consultation with a preferred time or urgency, booked at its first attempt."""
    delivery = confirmed(n, promised)
    event = delivery.event.model_copy(update=kind)
    await book_callbacks([Delivery(ev.wrap(event, event.consultation_id), event)], sessions, settings, now=NOW)
    return await booking_of(sessions, event.consultation_id)


async def test_the_next_attempt_keeps_the_consultants_preferred_time(scheduler):
    sessions, settings = scheduler
    morning = await book_as(sessions, settings, 1, preferred_time="morning")
    afternoon = await book_as(sessions, settings, 2, preferred_time="afternoon")
    assert (morning.preferred_time, afternoon.preferred_time) == ("morning", "afternoon")
    await call(sessions, settings, morning, 1, "no_answer", at(MONDAY, 9, 10))
    await call(sessions, settings, afternoon, 1, "no_answer", at(MONDAY, 13, 10))
    morning = await booking_of(sessions, morning.consultation_id)
    await call(sessions, settings, morning, 2, "no_answer", at(MONDAY, 11, 40))
    retries = [(s.receipt_no, s.attempt, to_japan(s.slot_starts_at))
               for s in await news(sessions, ev.CallbackScheduled) if s.attempt > 1]
    assert retries == [(morning.receipt_no, 2, at(MONDAY, 11, 30)),  # still before noon
                       (afternoon.receipt_no, 2, at(MONDAY, 15, 30)),
                       (morning.receipt_no, 3, at(TUESDAY, 9))]  # 13:40 is afternoon: the next morning


async def test_an_urgent_consultations_next_attempt_may_take_the_seats_kept_for_urgent_ones(scheduler):
    sessions, settings = scheduler
    kept = settings.model_copy(update={"slot_capacity": 2, "urgent_seats_one_in": 2})  # 1 seat of 2 kept
    urgent = await book_as(sessions, kept, 0, urgent=True)
    for n in range(1, 18):  # every other slot of Monday has its one seat for others taken
        await book_as(sessions, kept, n)
    await call(sessions, kept, urgent, 1, "no_answer", at(MONDAY, 9, 10))
    retry = (await news(sessions, ev.CallbackScheduled))[-1]
    assert (retry.receipt_no, retry.attempt, to_japan(retry.slot_starts_at)) == (urgent.receipt_no, 2, at(MONDAY, 11, 30))
    assert all(r.booked <= r.capacity for r in await slot_table(sessions))


async def test_outcomes_of_bookings_of_several_kinds_in_one_batch_each_keep_their_kind(scheduler):
    sessions, settings = scheduler
    kinds = [{"preferred_time": "morning"}, {"preferred_time": "afternoon"}, {"urgent": True}, {}]
    booked = [await book_as(sessions, settings, n, **kind) for n, kind in enumerate(kinds)]
    await record_outcomes([outcome(b, 1, "no_answer", at(MONDAY, 9, 5)) for b in booked], sessions, settings,
                          now=at(MONDAY, 9, 5))
    moved = [await booking_of(sessions, b.consultation_id) for b in booked]
    assert [m.attempt for m in moved] == [2, 2, 2, 2]
    starts = {m.receipt_no: to_japan(s.slot_starts_at) for m in moved
              for s in await news(sessions, ev.CallbackScheduled) if s.booking_id == m.id and s.attempt == 2}
    assert starts[moved[0].receipt_no].time() < time(12) and starts[moved[1].receipt_no].time() >= time(13)
    assert min(starts.values()) >= at(MONDAY, 11, 5)
