"""A property of the booking rules, on the real database: whatever the capacity, the share kept
for urgent consultations, the time received and the mix of preferred times and urgency of a
batch, every consultation is booked (none dropped) on an open day, within opening hours, at or
after its earliest contact, in the earliest slot that fits its preferred time and has room for
it, and no slot holds more bookings that are not urgent than its capacity less the urgent seats."""
import asyncio
import uuid
from collections import Counter
from datetime import datetime

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import select, text

from services.scheduler.booking import book_callbacks
from services.scheduler.orm import slots
from services.scheduler.rules import fits, seat_limit
from shared import events as ev
from shared.calendar import JST, DeskCalendar, to_japan
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from tests.integration.test_booking import outbox_events

CONSULTATION = st.tuples(st.sampled_from(["morning", "afternoon", "any"]), st.booleans())
RECEIVED = st.datetimes(min_value=datetime(2026, 11, 20), max_value=datetime(2026, 12, 12),
                        timezones=st.just(JST))


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(capacity=st.integers(1, 6), one_in=st.sampled_from([0, 2, 4]), received_at=RECEIVED,
       batch=st.lists(CONSULTATION, min_size=1, max_size=24))
def test_every_booking_fits_its_rules(desk, capacity, one_in, received_at, batch):
    asyncio.run(book_and_check(desk, capacity, one_in, received_at, batch))


async def book_and_check(desk, capacity, one_in, received_at, batch) -> None:
    engine = make_engine(desk, pool_size=2)
    sessions = make_sessions(engine)
    rules_of = desk.model_copy(update={"slot_capacity": capacity, "urgent_seats_one_in": one_in})
    calendar = DeskCalendar.default()
    earliest = calendar.earliest_contact(received_at)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("truncate scheduler.attempts, scheduler.bookings, scheduler.slots, "
                                    "scheduler.outbox, scheduler.inbox, scheduler.availability, scheduler.roster, "
                                    "scheduler.email_days restart identity"))
        wanted = {}
        for n, (preferred, urgent) in enumerate(batch):
            event = ev.EligibilityConfirmed(consultation_id=uuid.uuid4(), receipt_no=f"PH-P-{n:05d}", reason="member",
                                            contact_expected_from=earliest.date(), preferred_time=preferred,
                                            urgent=urgent)
            wanted[event.consultation_id] = Delivery(ev.wrap(event, event.consultation_id), event)
        await book_callbacks(list(wanted.values()), sessions, rules_of, now=received_at)
        news = await outbox_events(sessions)
        async with sessions() as s:
            table = {r.starts_at: r for r in await s.execute(select(slots))}
    finally:
        await engine.dispose()

    assert [e.event_type for e in news] == ["callback.scheduled.v1"] * len(batch)  # none dropped
    not_urgent = Counter()
    for envelope in news:
        event = wanted[envelope.correlation_id].event
        starts, ends = (to_japan(datetime.fromisoformat(envelope.data[k])) for k in ("slot_starts_at", "slot_ends_at"))
        assert calendar.is_open(starts.date())
        assert calendar.opens <= starts.time() and ends.time() <= calendar.closes and ends - starts == calendar.slot
        assert starts >= earliest and fits(starts, event.preferred_time)
        limit = lambda slot: seat_limit(slot.capacity, event.urgent, one_in)  # noqa: E731
        # the earliest that fits: each fitting slot before it, from the earliest contact, had no room for it
        assert all(slot.booked >= limit(slot) for at, slot in table.items()
                   if earliest <= at < starts and fits(at, event.preferred_time))
        not_urgent[starts] += not event.urgent
    assert all(slot.booked <= slot.capacity for slot in table.values())
    assert all(count <= seat_limit(table[at].capacity, False, one_in) for at, count in not_urgent.items())
