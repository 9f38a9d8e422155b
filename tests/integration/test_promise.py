"""The honest promise, across the scheduler and intake on the real database: as a day fills up
the scheduler announces the next free day, intake promises it and says the desk is busy, and
the consultation promised that day is booked on it or later, never earlier than its promise."""
import uuid
from datetime import datetime, timezone

from sqlalchemy import delete, select

from services.intake.consultations import note_availability
from services.intake.orm import availability
from services.scheduler.booking import book_callbacks
from services.scheduler.orm import bookings, slots
from shared import events as ev
from shared.calendar import DeskCalendar, japan_date
from shared.messaging import Delivery
from tests.integration.test_booking import confirmed, outbox_events, scheduler  # noqa: F401 (fixture)
from tests.integration.test_intake import SUBMISSION, intake  # noqa: F401 (fixture)


async def announced(sessions) -> list[ev.ScheduleAvailabilityChanged]:
    return [ev.ScheduleAvailabilityChanged.model_validate(e.data)
            for e in await outbox_events(sessions, with_availability=True)
            if e.event_type == ev.ScheduleAvailabilityChanged.routing_key]


async def booked_day(sessions, consultation_id):
    async with sessions() as s:
        starts = await s.scalar(select(slots.c.starts_at).join(bookings, bookings.c.slot_id == slots.c.id)
                                .where(bookings.c.consultation_id == consultation_id))
    return japan_date(starts)


async def test_a_filling_day_moves_the_promise_and_the_booking_is_never_earlier(scheduler, intake):
    scheduler_sessions, settings = scheduler
    client, intake_sessions = intake
    one_seat = settings.model_copy(update={"slot_capacity": 1, "availability_margin": 2})
    now = datetime.now(timezone.utc)
    first_day = DeskCalendar.default().earliest_contact(now).date()

    for n in range(40):  # fill the first day until the scheduler no longer offers it
        await book_callbacks([confirmed(n, promised=first_day)], scheduler_sessions, one_seat, now=now)
        news = await announced(scheduler_sessions)
        if news and news[-1].first_free_day > first_day:
            break
    latest = news[-1]
    assert latest.first_free_day > first_day and latest.busy
    await note_availability([Delivery(ev.wrap(latest, uuid.UUID(int=0)), latest)], intake_sessions)
    try:
        by_phone = {**SUBMISSION, "contact": {"method": "phone", "phone": "03-1234-5678"}}
        receipt = (await client.post("/api/v1/consultations", json=by_phone)).json()
        assert receipt["contact_expected_from"] == latest.first_free_day.isoformat()
        assert receipt["contact_may_take_longer"] is True

        promised = latest.first_free_day
        consultation = confirmed(99, promised=promised)
        await book_callbacks([consultation], scheduler_sessions, one_seat, now=now)
        assert await booked_day(scheduler_sessions, consultation.event.consultation_id) >= promised
    finally:
        async with intake_sessions.begin() as s:
            await s.execute(delete(availability))
