"""Use case of the scheduler: book the callbacks of a batch of confirmed consultations, each into
the earliest slot with room that fits its preferred time (rules.py), at or after its earliest
contact, in a transaction with their inbox records and outbox events. A booking that is not
urgent leaves the seats a slot keeps for urgent ones (rules.seat_limit): every seat is taken by
the same conditional update, `booked < limit`, the limit worked out in the statement itself.

One transaction per group of the batch: consultations with one contact method, one preferred
time and one urgency. Within a group every booking sees the same slots (the same window of each
day) and the same limit, so the order argument below holds as it is; across groups it would not
(an afternoon booking that holds 13:00 could wait for 9:30 for a morning one, while another
instance holds 9:30 and waits for 13:00). Replies by e-mail are booked on days, not in slots
(email_days.py). Urgent calls go before the others, so an urgent consultation confirmed with
others gets the earliest seats. A group committed before a later one failed is harmless: the
consumer retries each delivery alone, and the inbox skips what was booked.

When every open day within the horizon (PAYHARA_BOOKING_HORIZON_DAYS) is full, a consultation is
booked further out, up to PAYHARA_BOOKING_FURTHEST_DAYS, its callback.scheduled.v1 flagged
`beyond_horizon`, counted and logged; only past that is it unschedulable.

Hot row: every booking wants the first free slot of the same day. A slot row is locked from its
conditional update until the commit, so TAKE_SLOT skips rows that other instances hold (they keep
booking the next slots) but never jumps past an earlier slot that will still have a free seat
once its holder commits; such a day is retried by waiting for that holder instead. Slots
therefore fill in time order within the window, and no count is ever read before a write.

A batch holds all its seats until its commit, so every instance takes seats in the same order:
consultations by their first possible day, the days of a batch forward only (a day found full is
not tried again), the slots of a day's window in time order. An instance then only waits for a
slot later than every slot it holds (the slots of the window before its last seat all had at
most one seat under the group's limit left, and `booked` only grows), and two instances cannot
wait for each other, whatever their groups: each one's waits only go forward in time. The inbox
rows and the bookings are written in one order too. A batch that fails all the same (another instance booked
a copy of one of its consultations meanwhile, a lock held past LOCK_WAIT) books nothing, and the
consumer books each of its deliveries alone. This order argument holds because `booked` only
ever grows: a cancellation that frees a seat must be thought through again against it. A
roster change (roster.py) locks one day's slots in time order and waits for nothing else.

The next attempt of a call (attempts.py) takes its seat with the same Seats (seats.py), and keeps this
order: its transaction first locks every booking of its batch, in id order, before it takes any
seat (a transaction that holds seats never waits for a booking row: book_callbacks inserts
bookings only for consultations that have none, and an outcome exists only for a committed
booking); then it takes the seats in the order of their earliest start, each day's slots from
that start on, forward only, every retry of the transaction with the same window and limit (its
transaction is one group too: bookings of one preferred time and urgency, which each booking
keeps). So it too waits only for a slot later than every slot it holds. A retry frees no seat (the unanswered attempt keeps its own), so
`booked` still only grows.
"""
import logging
import uuid
from datetime import date, datetime, timezone

from prometheus_client import Counter
from sqlalchemy import Uuid, any_, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row

from services.scheduler import availability
from services.scheduler.email_days import EmailDay, EmailDays
from services.scheduler.orm import bookings, inbox, outbox
from services.scheduler.seats import Seats
from services.scheduler.slots import booking_days
from shared import events as ev
from shared.calendar import DeskCalendar, japan_date
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_events
from shared.settings import Settings

log = logging.getLogger("payhara.scheduler")
beyond_horizon = Counter("payhara_bookings_beyond_horizon", "First callbacks booked past the horizon, "
                         "every open day within it being full")
CONSUMER = "scheduler.book"
NO_FREE_SLOT = "no_free_slot_within_horizon"
LOCK_WAIT = "5s"  # a holder that keeps a slot longer is wedged: fail, and the messages are requeued

ALREADY_BOOKED = select(bookings.c.consultation_id).where(
    bookings.c.consultation_id == any_(bindparam("ids", type_=ARRAY(Uuid))))


async def book_callbacks(deliveries: list[Delivery[ev.EligibilityConfirmed]], sessions: Database,
                         settings: Settings, now: datetime | None = None) -> None:
    """Book each confirmed consultation of the batch once: a callback slot, or the news that the
    horizon is full. One transaction per group of the batch with one preferred time and urgency
    (urgent groups first), each raising rather than book part of its group."""
    now = now or datetime.now(timezone.utc)
    groups: dict[tuple[str, bool, str], list[Delivery[ev.EligibilityConfirmed]]] = {}
    for delivery in deliveries:
        event = delivery.event
        groups.setdefault((event.contact_method, not event.urgent, event.preferred_time), []).append(delivery)
    for (method, not_urgent, preferred), group in sorted(groups.items()):
        await _book_group(group, sessions, settings, now, Seats.For(preferred, not not_urgent, method == "email"))


async def _book_group(deliveries: list[Delivery[ev.EligibilityConfirmed]], sessions: Database,
                      settings: Settings, now: datetime, kind: "Seats.For") -> None:
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, sorted(deliveries, key=_event_id))
        if not fresh:
            return
        await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        booked = set(await session.scalars(ALREADY_BOOKED, {"ids": list({d.event.consultation_id for d in fresh})}))
        not_before = DeskCalendar.default().earliest_contact(now)  # today's slots, but none already past
        seats = EmailDays(session, settings.email_capacity_per_day) if kind.by_email else Seats(session, settings, kind)
        outcomes = []
        furthest = max(settings.booking_furthest_days, settings.booking_horizon_days)
        for event, days in callbacks_to_book(fresh, booked, now, furthest):
            slot = await seats.take_first(days, not_before)
            outcomes.append((event, uuid.uuid4(), slot, beyond_the_horizon(slot, days, settings.booking_horizon_days)))
        rows = [dict(id=booking_id, consultation_id=event.consultation_id, receipt_no=event.receipt_no,
                     booked_at=now, preferred_time=kind.preferred, urgent=kind.urgent, **_where(slot)) for event, booking_id, slot, _ in outcomes if slot]
        if rows:  # in consultation order, like every instance: copies in flight wait, not deadlock
            await session.execute(insert(bookings), sorted(rows, key=lambda row: row["consultation_id"]))
        await add_events(session, outbox, [(news(event, booking_id, slot, beyond), event.consultation_id)
                                           for event, booking_id, slot, beyond in outcomes])
        if rows:  # the promise: last lock, taken only on a change
            await availability.publish_if_changed(session, settings, now)
    for event, booking_id, slot, beyond in outcomes:
        if beyond:
            beyond_horizon.inc()
            log.warning("callback booked beyond the %d open days of the horizon: receipt=%s booking=%s %s",
                        settings.booking_horizon_days, event.receipt_no, booking_id, _where(slot))
        elif slot:
            log.info("callback booked: receipt=%s booking=%s %s", event.receipt_no, booking_id, _where(slot))
        else:
            log.warning("no callback slot within %d open days: receipt=%s", furthest, event.receipt_no)


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


def news(event: ev.EligibilityConfirmed, booking_id: uuid.UUID, slot: Row | None, beyond: bool = False) -> ev.Event:
    if slot is None:
        return ev.CallbackUnschedulable(consultation_id=event.consultation_id, receipt_no=event.receipt_no,
                                        reason=NO_FREE_SLOT)
    return ev.CallbackScheduled(consultation_id=event.consultation_id, receipt_no=event.receipt_no,
                                booking_id=booking_id, slot_starts_at=slot.starts_at, slot_ends_at=slot.ends_at,
                                beyond_horizon=beyond, by_email=isinstance(slot, EmailDay))


def _where(place: Row | EmailDay) -> dict:
    """The booking's columns for its place: a call's slot, or the day a reply by e-mail is due."""
    if isinstance(place, EmailDay):
        return {"slot_id": None, "email_day": place.day}
    return {"slot_id": place.id, "email_day": None}


def beyond_the_horizon(slot: Row | None, days: list[date], horizon: int) -> bool:
    """True for a slot on a day past the first `horizon` of `days`, the consultation's own."""
    return slot is not None and len(days) > horizon and japan_date(slot.starts_at) >= days[horizon]


def _event_id(delivery: Delivery) -> uuid.UUID:
    return delivery.envelope.event_id  # inbox rows in one order for every instance


def _first_day(callback: tuple[ev.EligibilityConfirmed, list[date]]) -> date:
    days = callback[1]
    return days[0] if days else date.max  # no day to try: takes no seat
