"""The rules of a booking's call attempts: what each outcome leads to, and from when and on which
days the next attempt may fall."""
from datetime import date, datetime, timedelta, timezone

import pytest

from services.scheduler.retries import CallPolicy, Exhausted, NextAttempt, Reached, after_outcome, retry_days
from shared.calendar import JST
from shared.settings import Settings

MAX_ATTEMPTS = CallPolicy().max_attempts

FRIDAY_1630 = datetime(2026, 11, 27, 16, 30, tzinfo=JST)
SLOT_END = datetime(2026, 11, 27, 17, 0, tzinfo=JST)  # the attempt was booked 16:00-17:00


def test_reached_closes_at_any_attempt():
    assert after_outcome("reached", 1, FRIDAY_1630, SLOT_END, FRIDAY_1630) == Reached()
    assert after_outcome("reached", MAX_ATTEMPTS, FRIDAY_1630, SLOT_END, FRIDAY_1630) == Reached()


def test_a_wrong_number_gives_up_at_once():
    assert after_outcome("wrong_number", 1, FRIDAY_1630, SLOT_END, FRIDAY_1630) == Exhausted(1, "wrong_number")


def test_no_answer_books_the_next_attempt_two_hours_later_at_the_earliest():
    assert CallPolicy() == CallPolicy.of(Settings()) == CallPolicy(timedelta(hours=2), 3)
    later = FRIDAY_1630 + timedelta(hours=2)
    assert after_outcome("no_answer", 1, FRIDAY_1630, SLOT_END, FRIDAY_1630) == NextAttempt(2, later)
    assert after_outcome("no_answer", 2, FRIDAY_1630, SLOT_END, FRIDAY_1630) == NextAttempt(3, later)


def test_no_answer_at_the_last_attempt_gives_up():
    assert after_outcome("no_answer", MAX_ATTEMPTS, FRIDAY_1630, SLOT_END, FRIDAY_1630) == Exhausted(
        MAX_ATTEMPTS, "no_answer_after_last_attempt")


def test_the_desk_sets_how_soon_and_how_often_it_calls_again():
    policy = CallPolicy.of(Settings(next_attempt_after_minutes=30, max_attempts=5))
    assert after_outcome("no_answer", 3, FRIDAY_1630, SLOT_END, FRIDAY_1630, policy) == NextAttempt(4, SLOT_END)
    assert after_outcome("no_answer", 4, FRIDAY_1630, FRIDAY_1630, FRIDAY_1630, policy) == NextAttempt(
        5, FRIDAY_1630 + timedelta(minutes=30))
    assert after_outcome("no_answer", 5, FRIDAY_1630, SLOT_END, FRIDAY_1630, policy) == Exhausted(
        5, "no_answer_after_last_attempt")
    one_call = CallPolicy.of(Settings(max_attempts=1))
    assert after_outcome("no_answer", 1, FRIDAY_1630, SLOT_END, FRIDAY_1630, one_call) == Exhausted(
        1, "no_answer_after_last_attempt")


def test_an_outcome_handled_late_never_books_in_the_past():
    late = FRIDAY_1630 + timedelta(days=3)
    assert after_outcome("no_answer", 1, FRIDAY_1630, SLOT_END, late) == NextAttempt(2, late)


def test_an_outcome_recorded_before_its_slot_never_books_the_next_attempt_in_that_slot():
    early = datetime(2026, 11, 27, 9, 0, tzinfo=JST)  # the operator called at 9:00; the slot is 16:00-17:00
    assert after_outcome("no_answer", 1, early, SLOT_END, early) == NextAttempt(2, SLOT_END)


def test_the_retry_days_skip_the_weekend_and_start_on_the_day_itself_when_open():
    after_hours = FRIDAY_1630 + timedelta(hours=2)
    assert retry_days(after_hours, 3) == [date(2026, 11, 27), date(2026, 11, 30), date(2026, 12, 1)]
    saturday = datetime(2026, 11, 28, 11, 0, tzinfo=JST)
    assert retry_days(saturday, 1) == [date(2026, 11, 30)]
    holiday_next = [date(2026, 11, 20), date(2026, 11, 24)]  # 23rd: 勤労感謝の日
    assert retry_days(datetime(2026, 11, 20, 17, 0, tzinfo=JST), 2) == holiday_next
    assert retry_days(datetime(2026, 12, 28, 17, 0, tzinfo=JST), 2) == [date(2026, 12, 28), date(2027, 1, 4)]
    assert retry_days(saturday, 0) == []


def test_the_retry_day_is_the_japan_date():
    # 16:00 UTC on Friday is 01:00 on Saturday in Japan: the desk is closed, Monday is next
    assert retry_days(datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc), 1) == [date(2026, 11, 30)]


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError):
        retry_days(datetime(2026, 11, 27, 18, 30), 1)
