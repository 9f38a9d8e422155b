"""Use case of the scheduler: book a confirmed consultation's callback into the earliest slot
with room, in one transaction with its inbox record and its outbox event.

Hot row: every booking wants the first free slot of the same day. A slot row is locked from its
conditional update until the commit, so TAKE_SLOT skips locked rows (other instances keep
booking the next slots) but never jumps past an earlier slot that will still have a free seat
once its current holder commits; such a day is retried by waiting for that holder instead.
Slots therefore fill in time order, and no count is ever read before a write.
"""
import logging
import uuid
from datetime import date, datetime, timezone

from sqlalchemy import insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scheduler.orm import bookings, inbox, outbox, slots
from services.scheduler.slots import booking_days, day_bounds, slots_of
from shared import events as ev
from shared.db import Database
from shared.inbox import first_delivery
from shared.outbox import add_event
from shared.settings import Settings

log = logging.getLogger("payhara.scheduler")
CONSUMER = "scheduler.book"
NO_FREE_SLOT = "no_free_slot_within_horizon"
ROUNDS_PER_DAY = 3  # after a wait the awaited slot is ours, so the next round takes it
LOCK_WAIT = "5s"  # a holder that keeps a slot longer is wedged: fail, and the message is requeued

# `e.booked < e.capacity - 1`: an earlier slot keeps a seat even after its (single) holder
# commits, so taking a later one would leave a gap in the day.
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


async def book_callback(event: ev.EligibilityConfirmed, envelope: ev.Envelope, sessions: Database,
                        settings: Settings, now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    async with sessions.begin() as session:
        if not await first_delivery(session, inbox, CONSUMER, envelope.event_id):
            return
        await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        booked = await session.scalar(select(bookings.c.id).where(bookings.c.consultation_id == event.consultation_id))
        if booked is not None:
            return
        for day in booking_days(event.contact_expected_from, now, settings.booking_horizon_days):
            slot = await take_slot(session, day, settings.slot_capacity)
            if slot is not None:
                booking_id = uuid.uuid4()
                await session.execute(insert(bookings).values(
                    id=booking_id, consultation_id=event.consultation_id, receipt_no=event.receipt_no,
                    slot_id=slot.id, booked_at=now,
                ))
                await add_event(session, outbox, ev.CallbackScheduled(
                    consultation_id=event.consultation_id, receipt_no=event.receipt_no, booking_id=booking_id,
                    slot_starts_at=slot.starts_at, slot_ends_at=slot.ends_at,
                ), event.consultation_id)
                log.info("callback booked: receipt=%s booking=%s slot=%s", event.receipt_no, booking_id, slot.id)
                return
        await add_event(session, outbox, ev.CallbackUnschedulable(
            consultation_id=event.consultation_id, receipt_no=event.receipt_no, reason=NO_FREE_SLOT,
        ), event.consultation_id)
        log.warning("no callback slot within %d business days: receipt=%s",
                    settings.booking_horizon_days, event.receipt_no)


async def take_slot(session: AsyncConnection, day: date, capacity: int):
    """Book one seat in the earliest slot of `day` with room; None when the day is full."""
    day_slots = [{"starts_at": s, "ends_at": e, "capacity": capacity} for s, e in slots_of(day)]
    if not day_slots:
        return None
    # first visit of a day creates its slots; concurrent creators wait for each other here
    await session.execute(pg_insert(slots).values(day_slots).on_conflict_do_nothing(index_elements=[slots.c.starts_at]))
    day_start, day_end = day_bounds(day)
    bounds = {"day_start": day_start, "day_end": day_end}
    for _ in range(ROUNDS_PER_DAY):
        slot = (await session.execute(TAKE_SLOT, bounds)).first()
        if slot is not None:
            return slot
        if await session.scalar(WAIT_FOR_SEAT, bounds) is None:
            # only last seats are left: one may have been freed meanwhile, else all are in flight
            return (await session.execute(TAKE_SLOT, bounds)).first()
    return None
