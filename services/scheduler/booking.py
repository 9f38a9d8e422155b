"""Use case of the scheduler: book the callbacks of a batch of confirmed consultations, each into
the earliest slot with room, in one transaction with their inbox records and outbox events.

Hot row: every booking wants the first free slot of the same day. A slot row is locked from its
conditional update until the commit, so TAKE_SLOT skips rows that other instances hold (they keep
booking the next slots) but never jumps past an earlier slot that will still have a free seat
once its holder commits; such a day is retried by waiting for that holder instead. Slots
therefore fill in time order, and no count is ever read before a write.

A batch holds all its seats until its commit, so every instance takes seats in the same order:
consultations by their first possible day, the days of a batch forward only (a day found full is
not tried again), the slots of a day in time order. An instance then only waits for a slot later
than every slot it holds, and two instances cannot wait for each other. The inbox rows and the
bookings are written in one order too. A batch that fails all the same (another instance booked
a copy of one of its consultations meanwhile, a lock held past LOCK_WAIT) books nothing, and the
consumer books each of its deliveries alone. This order argument holds because `booked` only
ever grows: a cancellation that frees a seat must be thought through again against it.

The next attempt of a call (attempts.py) takes its seat with the same Seats, and keeps this
order: its transaction first locks every booking of its batch, in id order, before it takes any
seat (a transaction that holds seats never waits for a booking row: book_callbacks inserts
bookings only for consultations that have none, and an outcome exists only for a committed
booking); then it takes the seats in the order of their earliest start, each day's slots from
that start on, forward only. So it too waits only for a slot later than every slot it holds. A
retry frees no seat (the unanswered attempt keeps its own), so `booked` still only grows.
"""
import logging
import uuid
from datetime import date, datetime, timezone

from sqlalchemy import Uuid, any_, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scheduler import availability
from services.scheduler.orm import bookings, inbox, outbox, slots
from services.scheduler.slots import booking_days, day_bounds, slots_of
from shared import events as ev
from shared.calendar import DeskCalendar
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events
from shared.settings import Settings

log = logging.getLogger("payhara.scheduler")
CONSUMER = "scheduler.book"
NO_FREE_SLOT = "no_free_slot_within_horizon"
ROUNDS_PER_DAY = 3  # after a wait the awaited slot is ours, so the next round takes it
LOCK_WAIT = "5s"  # a holder that keeps a slot longer is wedged: fail, and the messages are requeued

# `e.booked < e.capacity - 1`: an earlier slot keeps a seat even after its holder commits, so
# taking a later one would leave a gap in the day. (A slot with one seat left is only ever held
# by a booking of that seat: WAIT_FOR_SEAT locks slots with two or more.)
TAKE_SLOT = text("""
UPDATE scheduler.slots SET booked = booked + 1
WHERE id = (
    SELECT s.id FROM scheduler.slots s
    WHERE s.starts_at >= :day_start AND s.starts_at < :day_end AND s.booked < s.capacity
      AND NOT EXISTS (
          SELECT 1 FROM scheduler.slots e
          WHERE e.starts_at >= :day_start AND e.starts_at < s.starts_at AND e.booked < e.capacity - 1)
    ORDER BY s.starts_at LIMIT 1 FOR UPDATE SKIP LOCKED)
  AND booked < capacity
RETURNING id, starts_at, ends_at
""")

# TAKE_SLOT found nothing: every slot it may take is held by another booking. Wait for the
# first slot that keeps a free seat after its holder commits (and lock it for us). No such
# slot means the day's last seats are all being booked right now: the day is full.
WAIT_FOR_SEAT = text("""
SELECT id FROM scheduler.slots
WHERE starts_at >= :day_start AND starts_at < :day_end AND booked < capacity - 1
ORDER BY starts_at LIMIT 1 FOR UPDATE
""")

ALREADY_BOOKED = select(bookings.c.consultation_id).where(
    bookings.c.consultation_id == any_(bindparam("ids", type_=ARRAY(Uuid))))


async def book_callbacks(deliveries: list[Delivery[ev.EligibilityConfirmed]], sessions: Database,
                         settings: Settings, now: datetime | None = None) -> None:
    """Book each confirmed consultation of the batch once: a callback slot, or the news that the
    horizon is full. One transaction; it raises rather than book part of the batch."""
    now = now or datetime.now(timezone.utc)
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, sorted(deliveries, key=_event_id))
        if not fresh:
            return
        await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        booked = set(await session.scalars(ALREADY_BOOKED, {"ids": list({d.event.consultation_id for d in fresh})}))
        not_before = DeskCalendar.default().earliest_contact(now)  # today's slots, but none already past
        seats = Seats(session, settings.slot_capacity)
        outcomes = []
        for event, days in callbacks_to_book(fresh, booked, now, settings.booking_horizon_days):
            outcomes.append((event, uuid.uuid4(), await seats.take_first(days, not_before)))
        rows = [dict(id=booking_id, consultation_id=event.consultation_id, receipt_no=event.receipt_no,
                     slot_id=slot.id, booked_at=now) for event, booking_id, slot in outcomes if slot]
        if rows:  # in consultation order, like every instance: copies in flight wait, not deadlock
            await session.execute(insert(bookings), sorted(rows, key=lambda row: row["consultation_id"]))
        await add_events(session, outbox, [(news(event, booking_id, slot), event.consultation_id)
                                           for event, booking_id, slot in outcomes])
        if rows:  # the last lock of the transaction, and only when the day changes: see availability
            await availability.publish_if_changed(session, settings, now)
    for event, booking_id, slot in outcomes:
        if slot:
            log.info("callback booked: receipt=%s booking=%s slot=%s", event.receipt_no, booking_id, slot.id)
        else:
            log.warning("no callback slot within %d business days: receipt=%s",
                        settings.booking_horizon_days, event.receipt_no)


def callbacks_to_book(fresh: list[Delivery[ev.EligibilityConfirmed]], booked: set[uuid.UUID], now: datetime,
                      horizon: int) -> list[tuple[ev.EligibilityConfirmed, list[date]]]:
    """Each consultation not booked yet, once, with the days it may take, in the order in which
    the batch takes its seats: earliest first day first, then earliest confirmation."""
    to_book: dict[uuid.UUID, tuple[ev.EligibilityConfirmed, list[date]]] = {}
    for delivery in sorted(fresh, key=lambda d: d.envelope.occurred_at):
        event = delivery.event
        if event.consultation_id in booked:
            log.info("callback already booked: receipt=%s event=%s", event.receipt_no, delivery.envelope.event_id)
        elif event.consultation_id not in to_book:  # a copy in the same batch books nothing more
            to_book[event.consultation_id] = (event, booking_days(event.contact_expected_from, now, horizon))
    return sorted(to_book.values(), key=_first_day)  # stable: confirmations stay in order


def news(event: ev.EligibilityConfirmed, booking_id: uuid.UUID, slot: Row | None) -> ev.Event:
    if slot is None:
        return ev.CallbackUnschedulable(consultation_id=event.consultation_id, receipt_no=event.receipt_no,
                                        reason=NO_FREE_SLOT)
    return ev.CallbackScheduled(consultation_id=event.consultation_id, receipt_no=event.receipt_no,
                                booking_id=booking_id, slot_starts_at=slot.starts_at, slot_ends_at=slot.ends_at)


class Seats:
    """The seats one transaction takes, day by day: it creates a day's slots on its first visit
    of the day only, and does not try again a day it found full."""

    def __init__(self, session: AsyncConnection, capacity: int):
        self.session = session
        self.capacity = capacity
        self.created: set[date] = set()
        self.full: set[date] = set()

    async def take_first(self, days: list[date], not_before: datetime | None = None) -> Row | None:
        """One seat in the earliest slot with room on the first of `days` that has one, starting
        at or after `not_before`. A day found full is not tried again, so the calls of one
        transaction must come with `not_before` in increasing order."""
        for day in days:
            if day not in self.full:
                slot = await self.take(day, not_before)
                if slot is not None:
                    return slot
                self.full.add(day)
        return None

    async def take(self, day: date, not_before: datetime | None = None) -> Row | None:
        """One seat in the earliest slot of `day` with room (from `not_before` on); None when
        the day is full (from then on)."""
        if day not in self.created:
            day_slots = [{"starts_at": s, "ends_at": e, "capacity": self.capacity} for s, e in slots_of(day)]
            if not day_slots:
                return None
            # this waits for the creators of the day, and for every booking in flight on it too:
            # so a batch creates a day on its first visit only, before it holds a seat there
            await self.session.execute(
                pg_insert(slots).values(day_slots).on_conflict_do_nothing(index_elements=[slots.c.starts_at]))
            self.created.add(day)
        day_start, day_end = day_bounds(day)
        bounds = {"day_start": max(day_start, not_before or day_start), "day_end": day_end}
        for _ in range(ROUNDS_PER_DAY):
            slot = (await self.session.execute(TAKE_SLOT, bounds)).first()
            if slot is not None:
                return slot
            if await self.session.scalar(WAIT_FOR_SEAT, bounds) is None:
                # only last seats are left: one may have been freed meanwhile, else all are in flight
                return (await self.session.execute(TAKE_SLOT, bounds)).first()
        return None


def _event_id(delivery: Delivery) -> uuid.UUID:
    return delivery.envelope.event_id  # inbox rows in one order for every instance


def _first_day(callback: tuple[ev.EligibilityConfirmed, list[date]]) -> date:
    days = callback[1]
    return days[0] if days else date.max  # no day to try: takes no seat
