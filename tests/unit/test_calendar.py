"""The desk calendar: closed days, the promise on a receipt, the phone line's hours."""

import os
import time as clock
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from shared.calendar import (
    JST,
    business_days_from,
    closure_reason,
    first_contact_day,
    holiday_name,
    is_business_day,
    is_phone_line_open,
    japan_date,
    next_business_day,
    to_japan,
)


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)


# --- closed days -----------------------------------------------------------------------------


def test_ordinary_weekday_is_a_business_day():
    assert closure_reason(date(2026, 11, 25)) is None  # Wednesday
    assert is_business_day(date(2026, 11, 25))
    assert holiday_name(date(2026, 11, 25)) is None


def test_weekends_are_closed():
    assert closure_reason(date(2026, 11, 21)) == "weekend"  # Saturday
    assert closure_reason(date(2026, 11, 22)) == "weekend"  # Sunday
    assert not is_business_day(date(2026, 11, 21))


@pytest.mark.parametrize("day", [date(2025, 5, 6), date(2024, 2, 12)])
def test_substitute_holiday_is_closed(day):
    assert holiday_name(day) == "振替休日"
    assert closure_reason(day) == "national_holiday"
    assert day.weekday() < 5  # closed although a weekday


def test_citizens_holiday_between_two_holidays_is_closed():
    assert holiday_name(date(2026, 9, 21)) == "敬老の日"
    assert holiday_name(date(2026, 9, 22)) == "国民の休日"
    assert holiday_name(date(2026, 9, 23)) == "秋分の日"
    assert closure_reason(date(2026, 9, 22)) == "national_holiday"
    assert next_business_day(date(2026, 9, 18)) == date(2026, 9, 24)


def test_holiday_on_a_sunday_is_reported_as_a_holiday():
    assert date(2026, 5, 3).weekday() == 6
    assert closure_reason(date(2026, 5, 3)) == "national_holiday"


def test_year_end_closure_boundaries():
    assert closure_reason(date(2026, 12, 28)) is None  # Monday: last working day
    for offset in range(6):  # 29 Dec .. 3 Jan
        day = date(2026, 12, 29) + timedelta(days=offset)
        assert closure_reason(day) == "year_end_closure", day
    assert date(2027, 1, 4).weekday() == 0
    assert is_business_day(date(2027, 1, 4))


def test_new_years_day_is_year_end_closure_but_keeps_its_name():
    assert closure_reason(date(2027, 1, 1)) == "year_end_closure"
    assert holiday_name(date(2027, 1, 1)) == "元日"


def test_year_without_holiday_data_is_refused_not_guessed():
    with pytest.raises(ValueError, match="2100"):
        is_business_day(date(2100, 3, 22))


# --- stepping through business days ---------------------------------------------------------


def test_next_business_day_across_golden_week_2026():
    # 29 Apr Wed holiday; 2-3 May weekend; 4, 5, 6 May holidays (6th substitute).
    assert next_business_day(date(2026, 4, 28)) == date(2026, 4, 30)
    assert next_business_day(date(2026, 5, 1)) == date(2026, 5, 7)


def test_next_business_day_across_year_end():
    assert next_business_day(date(2026, 12, 28)) == date(2027, 1, 4)
    assert next_business_day(date(2026, 12, 25)) == date(2026, 12, 28)


def test_next_business_day_is_strictly_after():
    assert next_business_day(date(2026, 11, 25)) == date(2026, 11, 26)


def test_business_days_from_includes_the_day_itself_only_when_open():
    assert list(islice(business_days_from(date(2026, 11, 20)), 3)) == [
        date(2026, 11, 20),
        date(2026, 11, 24),
        date(2026, 11, 25),
    ]
    assert next(business_days_from(date(2026, 11, 21))) == date(2026, 11, 24)


# --- the promise on a receipt ----------------------------------------------------------------


def test_first_contact_day_uses_the_japan_date_not_utc():
    received = datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)  # 25 Nov 01:00 JST
    assert japan_date(received) == date(2026, 11, 25)
    assert first_contact_day(received) == date(2026, 11, 26)


def test_first_contact_day_late_utc_evening_is_already_tomorrow_in_japan():
    received = datetime(2026, 11, 25, 23, 30, tzinfo=timezone.utc)  # 26 Nov 08:30 JST
    assert first_contact_day(received) == date(2026, 11, 27)


def test_first_contact_day_friday_evening_skips_weekend_and_labour_thanksgiving():
    received = jst(2026, 11, 20, 19, 45)  # Friday; Monday 23 Nov is 勤労感謝の日
    assert holiday_name(date(2026, 11, 23)) == "勤労感謝の日"
    assert first_contact_day(received) == date(2026, 11, 24)


def test_first_contact_day_friday_evening_to_monday():
    assert first_contact_day(jst(2026, 11, 27, 20, 0)) == date(2026, 11, 30)


# --- the phone line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "open_"),
    [(8, 59, False), (9, 0, True), (17, 59, True), (18, 0, False)],
)
def test_phone_line_hours(hour, minute, open_):
    assert is_phone_line_open(jst(2026, 11, 25, hour, minute)) is open_


def test_phone_line_hours_are_japan_hours_whatever_the_offset_given():
    # 00:30 UTC is 09:30 in Japan; 09:30 UTC is 18:30 in Japan.
    assert is_phone_line_open(datetime(2026, 11, 25, 0, 30, tzinfo=timezone.utc))
    assert not is_phone_line_open(datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc))


def test_phone_line_closed_on_holiday_and_weekend():
    assert not is_phone_line_open(jst(2026, 11, 23, 10, 0))  # 勤労感謝の日
    assert not is_phone_line_open(jst(2026, 9, 22, 10, 0))  # 国民の休日
    assert not is_phone_line_open(jst(2026, 11, 21, 10, 0))  # Saturday
    assert not is_phone_line_open(jst(2026, 12, 30, 10, 0))  # year-end closure


# --- naive datetimes and the server's TZ ----------------------------------------------------


@pytest.mark.parametrize(
    "call", [to_japan, japan_date, first_contact_day, is_phone_line_open]
)
def test_naive_datetime_is_refused(call):
    with pytest.raises(ValueError, match="naive"):
        call(datetime(2026, 11, 25, 10, 0))


def test_to_japan_converts_the_instant():
    moment = to_japan(datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc))
    assert moment.utcoffset() == timedelta(hours=9)
    assert (moment.day, moment.hour) == (25, 1)


def _answers() -> tuple:
    return (
        japan_date(datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)),
        first_contact_day(datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)),
        first_contact_day(jst(2026, 11, 20, 19, 45)),
        is_phone_line_open(datetime(2026, 11, 25, 0, 30, tzinfo=timezone.utc)),
        is_phone_line_open(jst(2026, 11, 25, 18, 0)),
        to_japan(datetime(2026, 11, 24, 16, 0, tzinfo=ZoneInfo("America/Los_Angeles"))),
    )


@pytest.mark.parametrize("server_tz", ["America/Los_Angeles", "Pacific/Kiritimati"])
def test_results_do_not_depend_on_the_server_tz(server_tz):
    before = _answers()
    saved = os.environ.get("TZ")
    os.environ["TZ"] = server_tz
    clock.tzset()
    try:
        assert clock.timezone != -9 * 3600  # the process really runs in another zone now
        assert _answers() == before
        expected = (date(2026, 11, 25), date(2026, 11, 26), date(2026, 11, 24), True, False)
        assert before[:5] == expected
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        clock.tzset()


def test_dates_and_slots_are_written_in_japanese_on_the_japan_wall_clock():
    from datetime import date as _date, datetime as _datetime, timezone as _tz

    from shared.calendar import japanese_date, japanese_slot

    assert japanese_date(_date(2026, 11, 25)) == "2026年11月25日（水）"
    assert japanese_date(_date(2027, 1, 4)) == "2027年1月4日（月）"
    # 01:00-02:00 UTC is 10:00-11:00 in Japan; 15:30 UTC on the 24th is already the 25th there
    assert japanese_slot(_datetime(2026, 11, 25, 1, tzinfo=_tz.utc), _datetime(2026, 11, 25, 2, tzinfo=_tz.utc)) == (
        "2026年11月25日（水）10:00〜11:00")
    assert japanese_slot(_datetime(2026, 11, 24, 15, 30, tzinfo=_tz.utc), _datetime(2026, 11, 24, 16, 30, tzinfo=_tz.utc)) == (
        "2026年11月25日（水）00:30〜01:30")
