"""The scheduler's first free day: the first open day with more free seats than the margin
kept for consultations already promised that day."""
from datetime import date, datetime

import pytest

from services.scheduler.availability import first_free_day
from shared.calendar import JST, DeskCalendar

CALENDAR = DeskCalendar()
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=JST)


def test_a_day_without_slots_yet_is_free():
    assert first_free_day(CALENDAR, MONDAY_10, {}, margin=2) == date(2026, 11, 30)


@pytest.mark.parametrize("free_today, expected", [(3, date(2026, 11, 30)), (2, date(2026, 12, 1)), (0, date(2026, 12, 1))])
def test_the_seats_under_the_margin_are_kept_for_consultations_already_promised(free_today, expected):
    assert first_free_day(CALENDAR, MONDAY_10, {date(2026, 11, 30): free_today}, margin=2) == expected


def test_full_days_are_skipped_and_so_are_weekends_and_holidays():
    friday = datetime(2027, 1, 8, 10, 0, tzinfo=JST)  # Mon 11 Jan 2027 is 成人の日
    assert first_free_day(CALENDAR, friday, {date(2027, 1, 8): 0}, margin=0) == date(2027, 1, 12)


def test_received_on_a_closed_day_the_first_candidate_is_the_next_open_day():
    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=JST)
    assert first_free_day(CALENDAR, saturday, {}, margin=0) == date(2026, 11, 30)
