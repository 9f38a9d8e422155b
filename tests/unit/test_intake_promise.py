"""The honest promise: the later of the calendar's day and the scheduler's first free day."""
from datetime import date

from services.intake.promise import Promise, promised


def test_a_desk_with_room_promises_the_calendars_day():
    assert promised(date(2026, 11, 30), date(2026, 11, 30)) == Promise(date(2026, 11, 30), False)
    assert promised(date(2026, 11, 30), None) == Promise(date(2026, 11, 30), False)


def test_a_busy_desk_promises_its_first_free_day_and_says_it_may_take_longer():
    assert promised(date(2026, 11, 30), date(2026, 12, 3)) == Promise(date(2026, 12, 3), True)


def test_a_stale_first_free_day_in_the_past_never_pulls_the_promise_earlier():
    assert promised(date(2026, 11, 30), date(2026, 11, 20)) == Promise(date(2026, 11, 30), False)
