"""The pure booking rules: which slots fit a preferred time, and how far a booking may fill a slot."""
from datetime import date, datetime

import pytest

from services.scheduler.rules import fits, reserved, seat_limit, window
from services.scheduler.slots import slots_of
from shared.calendar import JST

TUESDAY = date(2026, 11, 24)


def starts(preferred) -> list[str]:
    return [s.astimezone(JST).strftime("%H:%M") for s, _ in slots_of(TUESDAY) if fits(s, preferred)]


def test_morning_is_before_noon_afternoon_from_one_and_any_the_whole_day_lunch_included():
    assert starts("morning") == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    assert starts("afternoon") == ["13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30",
                                   "17:00", "17:30"]
    assert len(starts("any")) == 18 and {"12:00", "12:30"} <= set(starts("any"))
    assert window(TUESDAY, "any") is None
    assert window(TUESDAY, "morning")[1] == datetime(2026, 11, 24, 12, 0, tzinfo=JST)


@pytest.mark.parametrize(("capacity", "one_in", "kept"), [(4, 4, 1), (8, 4, 2), (3, 4, 0), (1, 4, 0), (0, 4, 0),
                                                          (4, 0, 0), (6, 2, 3)])
def test_a_slot_keeps_one_seat_in_n_for_urgent_bookings(capacity, one_in, kept):
    assert reserved(capacity, one_in) == kept
    assert seat_limit(capacity, urgent=False, one_in=one_in) == capacity - kept
    assert seat_limit(capacity, urgent=True, one_in=one_in) == capacity
