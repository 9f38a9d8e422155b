"""Booking callbacks in batches on the real database: a batch takes its seats in time order and
overflows to the next business day, copies of a consultation book once, a batch that cannot be
booked whole books nothing, and its statements outside the seat taking do not grow with its size."""
import asyncio
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import date

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from services.scheduler.booking import book_callbacks
from services.scheduler.orm import bookings, inbox
from services.scheduler.slots import slots_of
from shared import events as ev
from tests.integration import test_booking
from tests.integration.test_booking import NOW, PROMISED, confirmed, outbox_events, resent, slot_table

scheduler = test_booking.scheduler  # the fixture: an empty scheduler schema


async def scheduled(sessions) -> list[ev.CallbackScheduled]:
    return [ev.CallbackScheduled.model_validate(p.data) for p in await outbox_events(sessions)
            if p.event_type == "callback.scheduled.v1"]


async def count(sessions, table) -> int:
    async with sessions() as s:
        return await s.scalar(select(func.count()).select_from(table))


async def test_a_batch_takes_the_first_seats_of_the_day_in_time_order(scheduler):
    sessions, settings = scheduler
    two_seats = settings.model_copy(update={"slot_capacity": 2})
    deliveries = [confirmed(i) for i in range(7)]
    await book_callbacks(deliveries, sessions, two_seats, now=NOW)
    assert [r.booked for r in await slot_table(sessions)] == [2, 2, 2, 1] + [0] * 14
    published = await scheduled(sessions)
    first = [s for s, _ in slots_of(PROMISED)]
    assert [p.slot_starts_at for p in published] == [first[0]] * 2 + [first[1]] * 2 + [first[2]] * 2 + [first[3]]
    assert Counter(p.consultation_id for p in published) == {d.event.consultation_id: 1 for d in deliveries}
    assert await count(sessions, bookings) == await count(sessions, inbox) == 7


async def test_copies_of_a_confirmation_book_once_within_and_across_batches(scheduler):
    sessions, settings = scheduler
    first, second, third = confirmed(1), confirmed(2), confirmed(3)
    await book_callbacks([first, first, resent(first), second], sessions, settings, now=NOW)
    await book_callbacks([resent(first), second, third], sessions, settings, now=NOW)  # second: redelivered
    published = await scheduled(sessions)
    assert Counter(p.consultation_id for p in published) == {d.event.consultation_id: 1 for d in (first, second, third)}
    assert await count(sessions, bookings) == 3
    assert sum(r.booked for r in await slot_table(sessions)) == 3
    assert await count(sessions, inbox) == 5  # every event id once: first x3, second, third


async def test_a_batch_that_fills_a_day_continues_on_the_next_business_day(scheduler):
    sessions, settings = scheduler
    one_seat = settings.model_copy(update={"slot_capacity": 1})
    friday, monday = date(2026, 11, 27), date(2026, 11, 30)
    await book_callbacks([confirmed(i, friday) for i in range(20)], sessions, one_seat, now=NOW)
    assert [p.slot_starts_at for p in await scheduled(sessions)] == (
        [s for s, _ in slots_of(friday)] + [s for s, _ in slots_of(monday)][:2])
    assert [r.booked for r in await slot_table(sessions)] == [1] * 18 + [1, 1] + [0] * 16


async def test_a_batch_beyond_the_horizon_books_what_fits_and_reports_the_rest(scheduler):
    sessions, settings = scheduler
    one_day = settings.model_copy(update={"slot_capacity": 1, "booking_horizon_days": 1, "booking_furthest_days": 1})
    await book_callbacks([confirmed(i) for i in range(20)], sessions, one_day, now=NOW)
    published = await outbox_events(sessions)
    assert [p.event_type for p in published] == ["callback.scheduled.v1"] * 18 + ["callback.unschedulable.v1"] * 2
    assert await count(sessions, bookings) == 18 and await count(sessions, inbox) == 20


async def test_a_batch_with_a_copy_booked_meanwhile_books_nothing_then_each_alone_books(scheduler):
    # Another instance books a copy of `first` and commits while this batch is booking it: the
    # unique booking per consultation fails the batch whole, and the consumer retries each alone.
    sessions, settings = scheduler
    first, other = confirmed(1), confirmed(2)
    await book_callbacks([confirmed(0)], sessions, settings, now=NOW)
    async with sessions.begin() as elsewhere:
        await elsewhere.execute(insert(bookings).values(
            id=uuid.uuid4(), consultation_id=first.event.consultation_id, receipt_no=first.event.receipt_no,
            slot_id=1, booked_at=NOW))
        batch = asyncio.create_task(book_callbacks([first, other], sessions, settings, now=NOW))
        await waiting_for_a_lock(sessions)
    with pytest.raises(IntegrityError):
        await batch
    assert sum(r.booked for r in await slot_table(sessions)) == 1 and await count(sessions, inbox) == 1
    for delivery in (first, other):
        await book_callbacks([delivery], sessions, settings, now=NOW)
    assert [p.consultation_id for p in await scheduled(sessions)][1:] == [other.event.consultation_id]
    assert sum(r.booked for r in await slot_table(sessions)) == 2 and await count(sessions, bookings) == 3


async def waiting_for_a_lock(sessions, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.02)):
        async with sessions() as s:
            if await s.scalar(text(
                    "select count(*) from pg_stat_activity where datname = current_database() "
                    "and wait_event_type = 'Lock'")):
                return
        await asyncio.sleep(0.02)
    raise TimeoutError("the batch never waited for the other booking")


@contextmanager
def statements(sessions):
    """The statements sent meanwhile: (seat taking, the others)."""
    seats, others = [], []

    def note(conn, cursor, statement, parameters, context, executemany):
        per_seat = statement.lstrip().startswith(("UPDATE scheduler.slots", "SELECT id FROM scheduler.slots"))
        (seats if per_seat else others).append(statement)

    event.listen(sessions.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seats, others
    finally:
        event.remove(sessions.engine.sync_engine, "before_cursor_execute", note)


@pytest.mark.parametrize("size", [1, 12])
async def test_a_batch_costs_eight_statements_besides_one_per_seat(scheduler, size):
    # inbox, lock timeout, existing bookings, the day's slots, the bookings, the outbox, and two
    # reads that find the first free day unchanged (free seats per day, the day last announced)
    sessions, settings = scheduler
    await book_callbacks([confirmed(100)], sessions, settings, now=NOW)  # the day's slots exist, announced
    with statements(sessions) as (seats, others):
        await book_callbacks([confirmed(i) for i in range(size)], sessions, settings, now=NOW)
    assert (len(seats), len(others)) == (size, 8), others
    assert await count(sessions, bookings) == size + 1


async def test_a_batch_tries_a_full_day_once(scheduler):
    sessions, settings = scheduler
    one_seat = settings.model_copy(update={"slot_capacity": 1})
    await book_callbacks([confirmed(i) for i in range(18)], sessions, one_seat, now=NOW)
    with statements(sessions) as (seats, others):
        await book_callbacks([confirmed(i) for i in range(18, 23)], sessions, one_seat, now=NOW)
    # the 24th: take, wait, take (all None) once; the 25th: one take per booking; besides the
    # seats, the seven of a batch and the two reads that find the first free day unchanged
    assert (len(seats), len(others)) == (3 + 5, 7 + 2)
    assert [r.booked for r in await slot_table(sessions)] == [1] * 18 + [1] * 5 + [0] * 13
