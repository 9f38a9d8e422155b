"""The booking rules on the real database: the preferred time picks the window of each day, a
morning that is full goes to the next day's morning (never the afternoon), and the seats a slot
keeps for urgent consultations are taken only by urgent ones."""
import uuid

from services.scheduler.booking import book_callbacks
from shared import events as ev
from shared.calendar import JST
from shared.messaging import Delivery
from tests.integration import test_booking
from tests.integration.test_booking import NOW, PROMISED, outbox_events, slot_table

scheduler = test_booking.scheduler  # the fixture: an empty scheduler schema


def confirmed(n: int, preferred: str = "any", urgent: bool = False) -> Delivery[ev.EligibilityConfirmed]:
    event = ev.EligibilityConfirmed(consultation_id=uuid.uuid4(), receipt_no=f"PH-261120-{n:05d}", reason="member",
                                    contact_expected_from=PROMISED, preferred_time=preferred, urgent=urgent)
    return Delivery(ev.wrap(event, event.consultation_id), event)


async def starts_of(sessions, deliveries) -> list[tuple[str, str]]:
    """(Japan date, HH:MM) of each delivery's callback, in the deliveries' order."""
    scheduled = {e.correlation_id: ev.CallbackScheduled.model_validate(e.data) for e in await outbox_events(sessions)
                 if e.event_type == ev.CallbackScheduled.routing_key}
    return [(f"{s.astimezone(JST):%m-%d}", f"{s.astimezone(JST):%H:%M}") for s in
            (scheduled[d.event.consultation_id].slot_starts_at for d in deliveries)]


async def test_each_preferred_time_takes_the_first_slot_of_its_window(scheduler):
    sessions, settings = scheduler
    batch = [confirmed(1, "afternoon"), confirmed(2, "morning"), confirmed(3, "any")]
    await book_callbacks(batch, sessions, settings, now=NOW)
    assert await starts_of(sessions, batch) == [("11-24", "13:00"), ("11-24", "09:00"), ("11-24", "09:00")]


async def test_a_full_morning_books_the_next_mornings_and_any_takes_the_lunch_hour(scheduler):
    sessions, settings = scheduler
    one_seat = settings.model_copy(update={"slot_capacity": 1})
    mornings = [confirmed(n, "morning") for n in range(8)]
    await book_callbacks(mornings, sessions, one_seat, now=NOW)
    found = await starts_of(sessions, mornings)
    assert found[:6] == [("11-24", t) for t in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30")]
    assert found[6:] == [("11-25", "09:00"), ("11-25", "09:30")]  # not Tuesday afternoon
    anyone = confirmed(9, "any")
    await book_callbacks([anyone], sessions, one_seat, now=NOW)
    assert await starts_of(sessions, [anyone]) == [("11-24", "12:00")]


async def test_the_seat_kept_for_urgent_consultations_is_taken_only_by_an_urgent_one(scheduler):
    sessions, settings = scheduler
    four = settings.model_copy(update={"slot_capacity": 4, "urgent_seats_one_in": 4})
    ordinary = [confirmed(n) for n in range(4)]
    await book_callbacks(ordinary, sessions, four, now=NOW)
    assert [r.booked for r in (await slot_table(sessions))[:2]] == [3, 1]  # 9:00 keeps its fourth seat
    urgent = confirmed(9, urgent=True)
    await book_callbacks([urgent], sessions, four, now=NOW)
    assert await starts_of(sessions, [urgent]) == [("11-24", "09:00")]
    assert [(r.booked, r.capacity) for r in (await slot_table(sessions))[:2]] == [(4, 4), (1, 4)]


async def test_an_urgent_consultation_confirmed_with_others_books_first(scheduler):
    sessions, settings = scheduler
    one_seat = settings.model_copy(update={"slot_capacity": 1})
    batch = [confirmed(1), confirmed(2), confirmed(3, urgent=True)]
    await book_callbacks(batch, sessions, one_seat, now=NOW)
    assert [t for _, t in await starts_of(sessions, batch)] == ["09:30", "10:00", "09:00"]
    assert [r.booked for r in await slot_table(sessions)] == [1, 1, 1] + [0] * 15
