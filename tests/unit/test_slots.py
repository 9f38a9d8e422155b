"""The scheduler's slot rules: which slots a day offers and which days a booking may take."""
from datetime import date, datetime, time, timedelta, timezone

import pytest

from services.scheduler.slots import booking_days, day_bounds, slots_of
from shared.calendar import JST, DeskCalendar

UTC = timezone.utc


def at_jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)


def test_a_business_day_has_half_hour_slots_from_opening_to_closing_in_japan_time_stored_as_utc():
    found = slots_of(date(2026, 11, 24))  # Tuesday
    assert len(found) == 18  # 9:00-18:00, back to back
    assert found[0] == (datetime(2026, 11, 24, 0, 0, tzinfo=UTC), datetime(2026, 11, 24, 0, 30, tzinfo=UTC))
    assert found[-1] == (datetime(2026, 11, 24, 8, 30, tzinfo=UTC), datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    assert [s.astimezone(JST).strftime("%H:%M") for s, _ in found[:3]] == ["09:00", "09:30", "10:00"]
    assert all(s.utcoffset() == timedelta(0) and e - s == timedelta(minutes=30) for s, e in found)
    assert all(e == s2 for (_, e), (s2, _) in zip(found, found[1:]))  # no gap, no overlap


def test_slots_follow_the_calendar_given_hours_and_slot_length():
    desk = DeskCalendar(opens=time(10), closes=time(17, 45), cutoff=time(16), slot=timedelta(hours=1))
    found = slots_of(date(2026, 11, 24), desk)
    # 10:00 to 17:00 in one-hour slots; 17:00-17:45 is shorter than a slot, so no slot
    assert [(s.astimezone(JST).hour, e.astimezone(JST).hour) for s, e in found] == [
        (h, h + 1) for h in range(10, 17)]
    assert slots_of(date(2026, 11, 23), desk) == []  # a holiday is closed whatever the hours


@pytest.mark.parametrize("closed", [
    date(2026, 11, 23),  # 勤労感謝の日 (Monday)
    date(2026, 11, 21),  # Saturday
    date(2026, 11, 22),  # Sunday
    date(2026, 12, 29),  # year-end closure on a weekday
    date(2027, 1, 4) - timedelta(days=1),  # 3 Jan: still closed
])
def test_a_closed_day_has_no_slots(closed):
    assert slots_of(closed) == []


def test_day_bounds_are_the_japan_calendar_day():
    start, end = day_bounds(date(2026, 11, 24))
    assert start == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert all(start <= s < end for s, _ in slots_of(date(2026, 11, 24)))


def test_booking_days_skip_weekends_holidays_and_the_year_end_closure():
    now = at_jst(2026, 12, 1, 12)
    assert booking_days(date(2026, 11, 20), at_jst(2026, 11, 19, 12), 3) == [
        date(2026, 11, 20), date(2026, 11, 24), date(2026, 11, 25),  # 21-22 weekend, 23 holiday
    ]
    assert booking_days(date(2026, 12, 25), now, 4) == [
        date(2026, 12, 25), date(2026, 12, 28), date(2027, 1, 4), date(2027, 1, 5),
    ]


def test_a_promised_day_that_is_closed_starts_at_the_next_business_day():
    assert booking_days(date(2026, 11, 21), at_jst(2026, 11, 20, 9), 2) == [date(2026, 11, 24), date(2026, 11, 25)]


def test_a_delayed_event_books_from_its_earliest_contact_never_a_past_day():
    promised = date(2026, 11, 24)
    # the event arrives on Thursday 26th at 15:00 JST, before the cutoff: the 24th is past, the
    # 26th is still possible (its slots from 16:00 on: the scheduler passes that bound)
    late = at_jst(2026, 11, 26, 15)
    assert booking_days(promised, late, 2) == [date(2026, 11, 26), date(2026, 11, 27)]
    # after the cutoff the first day is the next open one
    assert booking_days(promised, at_jst(2026, 11, 26, 16), 1) == [date(2026, 11, 27)]
    # 23:30 UTC on the 26th is already Friday 27th 08:30 in Japan: the 27th itself, from 9:30
    assert booking_days(promised, datetime(2026, 11, 26, 23, 30, tzinfo=UTC), 1) == [date(2026, 11, 27)]


def test_the_horizon_bounds_the_number_of_business_days():
    days = booking_days(date(2026, 11, 24), at_jst(2026, 11, 20, 10), 20)
    assert len(days) == 20 and len(set(days)) == 20 and days == sorted(days)
    assert all(slots_of(d) for d in days)
    assert booking_days(date(2026, 11, 24), at_jst(2026, 11, 20, 10), 1) == [date(2026, 11, 24)]
    assert booking_days(date(2026, 11, 24), at_jst(2026, 11, 20, 10), 0) == []


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError):
        booking_days(date(2026, 11, 24), datetime(2026, 11, 20, 10), 1)
