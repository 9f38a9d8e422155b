"""Booking callbacks on the real database: the first slot of the promised day, once per
consultation, never over capacity with four scheduler instances racing batches, and a clear
`unschedulable` event when the horizon is full."""
import asyncio
import uuid
from collections import Counter
from datetime import date, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from services.scheduler.booking import NO_FREE_SLOT, book_callbacks
from services.scheduler.orm import bookings, inbox, outbox, slots
from services.scheduler.slots import slots_of
from shared import events as ev
from shared.calendar import JST
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=JST)  # Friday; 23 Nov is a holiday
PROMISED = date(2026, 11, 24)  # the receipt's promise: Tuesday


def confirmed(n: int = 0, promised: date = PROMISED) -> Delivery[ev.EligibilityConfirmed]:
    event = ev.EligibilityConfirmed(
        consultation_id=uuid.uuid4(), receipt_no=f"PH-261120-{n:04d}0", reason="member", contact_expected_from=promised,
    )
    return Delivery(ev.wrap(event, event.consultation_id), event)


def resent(delivery: Delivery) -> Delivery:
    """The same confirmation published again: another event id."""
    return Delivery(ev.wrap(delivery.event, delivery.event.consultation_id), delivery.event)


@pytest.fixture
async def scheduler(desk):
    engine = make_engine(desk)
    async with engine.begin() as conn:
        await conn.execute(text(
            "truncate scheduler.attempts, scheduler.bookings, scheduler.slots, scheduler.outbox, scheduler.inbox, "
            "scheduler.availability, scheduler.roster, scheduler.email_days "
            "restart identity"
        ))
    yield make_sessions(engine), desk
    await engine.dispose()


async def outbox_events(sessions, with_availability: bool = False) -> list[ev.Envelope]:
    """The scheduler's news about consultations, in order (and its availability news if asked)."""
    async with sessions() as s:
        found = [ev.Envelope.model_validate_json(b) for b in (await s.scalars(select(outbox.c.body).order_by(outbox.c.id)))]
    return [e for e in found if with_availability or e.event_type != ev.ScheduleAvailabilityChanged.routing_key]


async def slot_table(sessions) -> list:
    async with sessions() as s:
        return (await s.execute(select(slots).order_by(slots.c.starts_at))).all()


async def test_the_first_booking_takes_the_first_slot_of_the_promised_day(scheduler):
    sessions, settings = scheduler
    delivery = confirmed()
    event = delivery.event
    await book_callbacks([delivery], sessions, settings, now=NOW)
    (published,) = await outbox_events(sessions)
    assert published.event_type == "callback.scheduled.v1" and published.correlation_id == event.consultation_id
    scheduled = ev.CallbackScheduled.model_validate(published.data)
    assert (scheduled.slot_starts_at, scheduled.slot_ends_at) == slots_of(PROMISED)[0]
    assert scheduled.slot_starts_at.astimezone(JST).hour == 9 and scheduled.receipt_no == event.receipt_no
    async with sessions() as s:
        booking = (await s.execute(select(bookings))).one()
    assert booking.id == scheduled.booking_id and booking.consultation_id == event.consultation_id
    table = await slot_table(sessions)
    assert [r.booked for r in table] == [1] + [0] * 17
    assert {r.capacity for r in table} == {settings.slot_capacity}


async def test_a_redelivered_or_resent_confirmation_books_once(scheduler):
    sessions, settings = scheduler
    delivery = confirmed()
    await book_callbacks([delivery], sessions, settings, now=NOW)
    await book_callbacks([delivery], sessions, settings, now=NOW)  # same envelope redelivered
    await book_callbacks([resent(delivery)], sessions, settings, now=NOW)
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(bookings)) == 1
        assert await s.scalar(select(func.sum(slots.c.booked))) == 1
        assert await s.scalar(select(func.count()).select_from(inbox)) == 2
    assert len(await outbox_events(sessions)) == 1


async def test_a_delayed_confirmation_books_from_its_earliest_contact_never_a_past_slot(scheduler):
    sessions, settings = scheduler
    late = datetime(2026, 11, 26, 15, 0, tzinfo=JST)  # the promised 24th is past; today from 16:00 on
    await book_callbacks([confirmed()], sessions, settings, now=late)
    (published,) = [p for p in await outbox_events(sessions) if p.event_type == "callback.scheduled.v1"]
    starts = ev.CallbackScheduled.model_validate(published.data).slot_starts_at
    assert starts == datetime(2026, 11, 26, 16, 0, tzinfo=JST)
    assert starts in [s for s, _ in slots_of(date(2026, 11, 26))]


async def race(sessions, settings, deliveries: list[Delivery], batch: int) -> tuple[list, list]:
    """The deliveries booked at once, in batches of `batch`, by four scheduler instances (engines)
    with capacity 2. A batch that fails fails the test: instances must not deadlock."""
    tight = settings.model_copy(update={"slot_capacity": 2})
    engines = [make_engine(settings, pool_size=10) for _ in range(4)]
    instances = [make_sessions(e) for e in engines]
    batches = [deliveries[i:i + batch] for i in range(0, len(deliveries), batch)]
    try:
        await asyncio.gather(*(
            book_callbacks(b, instances[i % 4], tight, now=NOW) for i, b in enumerate(batches)
        ))
    finally:
        for engine in engines:
            await engine.dispose()
    async with sessions() as s:
        booked = (await s.execute(select(bookings.c.consultation_id, bookings.c.slot_id))).all()
    return await slot_table(sessions), booked


@pytest.mark.parametrize("promised", [[PROMISED], [PROMISED, date(2026, 11, 25)]], ids=["one day", "two days"])
async def test_racing_instances_never_overbook_and_fill_slots_in_time_order(scheduler, promised):
    # with two promised days, half of each batch starts on the 25th: the 24th still fills up
    # (40 want its 36 seats), and instances holding seats on both days must not deadlock
    sessions, settings = scheduler
    deliveries = [confirmed(i, promised[i % len(promised)]) for i in range(80)]
    table, booked = await race(sessions, settings, deliveries, batch=5)
    assert all(r.booked <= r.capacity == 2 for r in table)
    assert sum(r.booked for r in table) == len(booked) == 80
    assert Counter(c for c, _ in booked) == Counter({d.event.consultation_id: 1 for d in deliveries})
    assert Counter(slot for _, slot in booked) == {r.id: r.booked for r in table if r.booked}
    # time order: two full days (18 slots x 2), then the third day's first four slots
    assert [r.booked for r in table] == [2] * 36 + [2] * 4 + [0] * 14
    assert [r.starts_at for r in table[::18]] == [slots_of(d)[0][0] for d in (
        date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26))]
    published = await outbox_events(sessions)
    assert Counter(p.event_type for p in published) == {"callback.scheduled.v1": 80}


@pytest.mark.parametrize("batch", [1, 2])
async def test_a_small_burst_does_not_spread_over_the_day(scheduler, batch):
    # Skipping locked slots alone would put concurrent bookings into 9:00, 9:30, 10:00 ...
    # while 9:00 and 9:30 still had seats: the last booked slot must be the only one with room.
    sessions, settings = scheduler
    table, booked = await race(sessions, settings, [confirmed(i) for i in range(5)], batch)
    assert [r.booked for r in table] == [2, 2, 1] + [0] * 15 and len(booked) == 5


async def test_a_full_horizon_up_to_the_furthest_day_gives_an_unschedulable_event(scheduler, caplog):
    sessions, settings = scheduler
    one_day = settings.model_copy(update={"slot_capacity": 1, "booking_horizon_days": 1, "booking_furthest_days": 1})
    deliveries = [confirmed(n) for n in range(19)]
    for delivery in deliveries:
        await book_callbacks([delivery], sessions, one_day, now=NOW)
    published = await outbox_events(sessions)
    assert [p.event_type for p in published] == ["callback.scheduled.v1"] * 18 + ["callback.unschedulable.v1"]
    refused = ev.CallbackUnschedulable.model_validate(published[-1].data)
    assert refused.reason == NO_FREE_SLOT and refused.consultation_id == deliveries[18].event.consultation_id
    assert deliveries[18].event.receipt_no in caplog.text
    assert [r.booked for r in await slot_table(sessions)] == [1] * 18
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(bookings)) == 18


async def test_a_full_horizon_books_further_out_flagged_counted_and_logged(scheduler, caplog):
    sessions, settings = scheduler
    one_day = settings.model_copy(update={"slot_capacity": 1, "booking_horizon_days": 1, "booking_furthest_days": 2})
    counted = REGISTRY.get_sample_value("payhara_bookings_beyond_horizon_total") or 0.0
    deliveries = [confirmed(n) for n in range(37)]
    await book_callbacks(deliveries[:18], sessions, one_day, now=NOW)  # the horizon's one day: full
    await book_callbacks(deliveries[18:], sessions, one_day, now=NOW)
    published = await outbox_events(sessions)
    scheduled = [ev.CallbackScheduled.model_validate(p.data) for p in published[:36]]
    assert [s.beyond_horizon for s in scheduled] == [False] * 18 + [True] * 18
    assert {s.slot_starts_at.astimezone(JST).date() for s in scheduled[18:]} == {date(2026, 11, 25)}
    assert published[36].event_type == "callback.unschedulable.v1"  # past the furthest day: only then
    assert REGISTRY.get_sample_value("payhara_bookings_beyond_horizon_total") == counted + 18
    warned = [r.getMessage() for r in caplog.records if "beyond the 1 open days" in r.getMessage()]
    assert len(warned) == 18 and str(scheduled[18].booking_id) in warned[0]
