"""Use case of the scheduler: an operator's call outcome moves its booking on. `reached` closes
it; `no_answer` books the next attempt (NEXT_ATTEMPT_AFTER later at the earliest, in an open
slot that fits the consultant's preferred time, with the seat taken like any booking, urgent
ones from the seats kept for them) until the last attempt (retries.CallPolicy, from the settings),
then gives up; `wrong_number` gives up at once. Giving up publishes callback.exhausted.v1, for the notifier's fallback.

An outcome has one effect: the inbox drops a redelivered event, and the booking, locked, says
which attempt is live, so a second outcome for that attempt or one for an older attempt is
ignored; the primary key of `attempts` (booking, attempt) backs that up. Why the seats cannot
deadlock with other bookings: the lock order in booking.py's docstring.
"""
import logging
import uuid
from datetime import datetime, timezone

from sqlalchemy import Uuid, any_, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from services.scheduler.booking import LOCK_WAIT, NO_FREE_SLOT, beyond_the_horizon
from services.scheduler.seats import Seats
from services.scheduler import availability
from services.scheduler.orm import attempts, bookings, inbox, outbox, slots
from services.scheduler.retries import CallPolicy, Exhausted, NextAttempt, Reached, after_outcome, retry_days
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events
from shared.settings import Settings

log = logging.getLogger("payhara.scheduler")
CONSUMER = "scheduler.outcome"

KINDS = select(bookings.c.id, bookings.c.preferred_time, bookings.c.urgent).where(
    bookings.c.id == any_(bindparam("ids", type_=ARRAY(Uuid))))
MOVE_ON = update(bookings).where(bookings.c.id == bindparam("b_id")).values(
    status=bindparam("b_status"), attempt=bindparam("b_attempt"), slot_id=bindparam("b_slot_id"),
    closed_at=bindparam("b_closed_at"))


async def record_outcomes(deliveries: list[Delivery[ev.CallOutcomeRecorded]], sessions: Database,
                          settings: Settings, now: datetime | None = None) -> None:
    """Apply each call outcome of the batch once, with its events: one transaction per group of
    the batch whose bookings have one preferred time and urgency (urgent first), as booking.py
    books first attempts, for the same reason (its lock order)."""
    now = now or datetime.now(timezone.utc)
    async with sessions() as lookup:  # a plain read: what a booking was booked by never changes
        kinds = {row.id: Seats.For(row.preferred_time, row.urgent) for row in await lookup.execute(
            KINDS, {"ids": list({d.event.booking_id for d in deliveries})})}
    groups: dict[Seats.For, list[Delivery[ev.CallOutcomeRecorded]]] = {}
    for delivery in deliveries:  # an unknown booking's outcome is dropped in any group: the first
        groups.setdefault(kinds.get(delivery.event.booking_id, Seats.For()), []).append(delivery)
    for kind, group in sorted(groups.items(), key=lambda item: (not item[0].urgent, item[0].preferred)):
        await _record_group(group, sessions, settings, now, kind)


async def _record_group(deliveries: list[Delivery[ev.CallOutcomeRecorded]], sessions: Database,
                        settings: Settings, now: datetime, kind: Seats.For) -> None:
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, deliveries)
        if not fresh:
            return
        await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        # every booking of the batch, locked in one order, before any seat is taken
        held = {row.id: row for row in (await session.execute(
            select(bookings).where(bookings.c.id.in_({d.event.booking_id for d in fresh}))
            .order_by(bookings.c.id).with_for_update())).all()}
        outcomes = _live_outcomes(fresh, held)
        if not outcomes:
            return
        await session.execute(insert(attempts), [dict(
            booking_id=b.id, attempt=e.attempt, slot_id=b.slot_id, outcome=e.outcome, operator_id=e.operator_id,
            recorded_at=e.recorded_at) for e, b in outcomes])
        ends = dict((await session.execute(  # a plain read: no slot is locked before its seat is taken
            select(slots.c.id, slots.c.ends_at).where(slots.c.id.in_({b.slot_id for _, b in outcomes})))).all())
        policy = CallPolicy.of(settings)
        decided = [(e, b, after_outcome(e.outcome, e.attempt, e.recorded_at, ends[b.slot_id], now, policy))
                   for e, b in outcomes]
        seats = await _take_seats(Seats(session, settings, kind), decided, settings)
        moves = [_move(b, e, after, seats.get(b.id, (None, False))[0]) for e, b, after in decided]
        news = [_news(b, after, *seats.get(b.id, (None, False))) for _, b, after in decided]
        await session.execute(MOVE_ON, moves)
        await add_events(session, outbox, [(e, e.consultation_id) for e in news if e is not None])
        if seats:  # retries take seats too: the first free day may have moved
            await availability.publish_if_changed(session, settings, now)
    for (event, _), move in zip(outcomes, moves):
        log.info("call outcome %s applied: receipt=%s booking=%s is %s at attempt %d", event.outcome,
                 event.receipt_no, move["b_id"], move["b_status"], move["b_attempt"])


def _live_outcomes(fresh: list[Delivery[ev.CallOutcomeRecorded]], held: dict) -> list[tuple]:
    """(outcome, its booking) for each outcome of the live attempt; one per booking, the first recorded."""
    outcomes: list[tuple] = []
    for delivery in sorted(fresh, key=lambda d: d.event.recorded_at):
        booking = held.get(delivery.event.booking_id)
        if _is_for_the_live_attempt(delivery, booking, moving={b.id for _, b in outcomes}):
            outcomes.append((delivery.event, booking))
    return outcomes


async def _take_seats(seats: Seats, decided: list[tuple], settings: Settings) -> dict:
    """booking id -> (the slot of its next attempt, whether beyond the horizon); the slot is None
    when there is no room up to the furthest day. In the order of their earliest start, as Seats
    asks (booking.py's lock order)."""
    taken = {}
    retries = sorted(((b, after) for _, b, after in decided if isinstance(after, NextAttempt)),
                     key=lambda retry: retry[1].not_before)
    furthest = max(settings.booking_furthest_days, settings.booking_horizon_days)
    for booking, after in retries:
        days = retry_days(after.not_before, furthest)
        slot = await seats.take_first(days, after.not_before)
        taken[booking.id] = (slot, beyond_the_horizon(slot, days, settings.booking_horizon_days))
    return taken


def _is_for_the_live_attempt(delivery: Delivery[ev.CallOutcomeRecorded], booking, moving: set[uuid.UUID]) -> bool:
    event = delivery.event
    if booking is None or booking.consultation_id != event.consultation_id:
        log.warning("call outcome for an unknown booking, or one of another consultation, ignored: "
                    "booking=%s event=%s", event.booking_id, delivery.envelope.event_id)
        return False
    if booking.slot_id is None:  # a reply by e-mail: no call to record an outcome of
        log.warning("call outcome for a booking by e-mail ignored: booking=%s event=%s", booking.id,
                    delivery.envelope.event_id)
        return False
    if booking.id in moving or (booking.status, booking.attempt) != ("live", event.attempt):
        log.info("call outcome for attempt %d ignored, not the live attempt: booking=%s (%s, attempt %d) event=%s",
                 event.attempt, booking.id, booking.status, booking.attempt, delivery.envelope.event_id)
        return False
    return True


def _move(booking, event: ev.CallOutcomeRecorded, after, slot) -> dict:
    """The booking's row after the outcome."""
    move = {"b_id": booking.id, "b_status": "live", "b_attempt": booking.attempt, "b_slot_id": booking.slot_id,
            "b_closed_at": event.recorded_at}
    if isinstance(after, Reached):
        move["b_status"] = "reached"
    elif isinstance(after, Exhausted):
        move["b_status"] = "exhausted"
    elif slot is None:
        move["b_status"] = "unschedulable"
    else:
        move.update(b_attempt=after.attempt, b_slot_id=slot.id, b_closed_at=None)
    return move


def _news(booking, after, slot, beyond: bool) -> ev.Event | None:
    ids = {"consultation_id": booking.consultation_id, "receipt_no": booking.receipt_no}
    if isinstance(after, Exhausted):
        return ev.CallbackExhausted(**ids, booking_id=booking.id, attempts=after.attempts, reason=after.reason)
    if isinstance(after, NextAttempt) and slot is None:
        return ev.CallbackUnschedulable(**ids, reason=NO_FREE_SLOT)
    if isinstance(after, NextAttempt):
        return ev.CallbackScheduled(**ids, booking_id=booking.id, slot_starts_at=slot.starts_at,
                                    slot_ends_at=slot.ends_at, attempt=after.attempt, beyond_horizon=beyond)
    return None
