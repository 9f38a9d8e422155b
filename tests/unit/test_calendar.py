"""The desk calendar: closed days, the earliest contact a receipt promises, the phone line's hours."""
import os
import time as clock
from datetime import date, datetime, time, timedelta, timezone
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from shared.calendar import (
    JST, DeskCalendar, business_days_from, closure_reason, first_contact_day, holiday_name,
    is_business_day, is_phone_line_open, japan_date, next_business_day, to_japan,
)

UTC = timezone.utc
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
NATIONAL = DeskCalendar()  # the default hours, no desk file: what the shipped file amounts to


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- closed days and their reasons -----------------------------------------------------------

@pytest.mark.parametrize(("day", "reason"), [
    (date(2026, 11, 25), None),  # an ordinary Wednesday
    (date(2026, 11, 21), "土曜日"),
    (date(2026, 11, 22), "日曜日"),
    (date(2026, 9, 21), "敬老の日"),
    (date(2026, 9, 22), "国民の休日"),  # a citizens' holiday between two holidays
    (date(2026, 9, 23), "秋分の日"),
    (date(2026, 5, 3), "憲法記念日"),  # a holiday on a Sunday is named, not "日曜日"
    (date(2026, 5, 6), "振替休日"),  # Wednesday, substitute for Sunday 3 May
    (date(2025, 5, 6), "振替休日"),
    (date(2024, 2, 12), "振替休日"),
    (date(2027, 3, 21), "春分の日"),  # a Sunday in 2027 ...
    (date(2027, 3, 22), "振替休日"),  # ... so the Monday is off
    (date(2027, 9, 21), None),  # 2027 has no citizens' holiday: 敬老の日 20th, 秋分の日 23rd
    (date(2027, 9, 22), None),
    (date(2027, 9, 23), "秋分の日"),
    (date(2026, 12, 28), None),  # Monday: the last working day of 2026
    (date(2026, 12, 29), "年末年始休業"),
    (date(2027, 1, 1), "年末年始休業"),  # also 元日: the closure is the more specific reason
    (date(2027, 1, 3), "年末年始休業"),
    (date(2027, 1, 4), None),
])
def test_closure_reason_is_the_japanese_reason(day, reason):
    assert NATIONAL.closure_reason(day) == reason
    assert NATIONAL.is_open(day) is (reason is None)
    assert closure_reason(day) == reason and is_business_day(day) is (reason is None)  # the helpers agree


def test_new_years_day_keeps_its_holiday_name():
    assert holiday_name(date(2027, 1, 1)) == "元日"


@pytest.mark.parametrize("ask", [NATIONAL.closure_reason, NATIONAL.is_open, is_business_day])
def test_a_year_without_holiday_data_is_refused_not_guessed(ask):
    with pytest.raises(ValueError, match="2100"):
        ask(date(2100, 3, 22))


@pytest.mark.parametrize(("day", "next_open"), [
    (date(2026, 11, 25), date(2026, 11, 26)),  # strictly after
    (date(2026, 4, 28), date(2026, 4, 30)),  # 29 Apr 昭和の日
    (date(2026, 5, 1), date(2026, 5, 7)),  # Golden Week with the 6 May substitute
    (date(2026, 9, 18), date(2026, 9, 24)),
    (date(2026, 12, 25), date(2026, 12, 28)),
    (date(2026, 12, 28), date(2027, 1, 4)),
])
def test_next_open_day(day, next_open):
    assert NATIONAL.next_open_day(day) == next_open == next_business_day(day)


def test_business_days_from_includes_the_day_itself_only_when_open():
    assert list(islice(business_days_from(date(2026, 11, 20)), 3)) == [
        date(2026, 11, 20), date(2026, 11, 24), date(2026, 11, 25)]
    assert next(business_days_from(date(2026, 11, 21))) == date(2026, 11, 24)


# --- the earliest contact --------------------------------------------------------------------

EARLIEST_CONTACT = {
    # an ordinary Wednesday, 25 Nov 2026: same day before the 16:00 cutoff, lead 60, 30-minute slots
    "06:00 waits for opening": (jst(2026, 11, 25, 6), jst(2026, 11, 25, 9)),
    "08:00 + lead is opening": (jst(2026, 11, 25, 8), jst(2026, 11, 25, 9)),
    "08:30 + lead": (jst(2026, 11, 25, 8, 30), jst(2026, 11, 25, 9, 30)),
    "08:31 rounds up": (jst(2026, 11, 25, 8, 31), jst(2026, 11, 25, 10)),
    "09:00 opening": (jst(2026, 11, 25, 9), jst(2026, 11, 25, 10)),
    "a second past a slot start": (jst(2026, 11, 25, 10, 0, 1), jst(2026, 11, 25, 11, 30)),
    "12:15": (jst(2026, 11, 25, 12, 15), jst(2026, 11, 25, 13, 30)),
    "15:59 last minute": (jst(2026, 11, 25, 15, 59), jst(2026, 11, 25, 17)),
    "15:59:59.999999": (datetime(2026, 11, 25, 15, 59, 59, 999999, tzinfo=JST), jst(2026, 11, 25, 17)),
    "16:00 is after the cutoff": (jst(2026, 11, 25, 16), jst(2026, 11, 26, 9)),
    "17:59": (jst(2026, 11, 25, 17, 59), jst(2026, 11, 26, 9)),
    "18:00 closing": (jst(2026, 11, 25, 18), jst(2026, 11, 26, 9)),
    "23:59": (jst(2026, 11, 25, 23, 59), jst(2026, 11, 26, 9)),
    "midnight JST is the new day": (jst(2026, 11, 26, 0, 0), jst(2026, 11, 26, 9)),
    # UTC and other zones: the Japan wall clock decides
    "Sunday 15:30Z is Monday 00:30 JST": (utc(2026, 11, 29, 15, 30), jst(2026, 11, 30, 9)),
    "Sunday 14:59Z is still Sunday in Japan": (utc(2026, 11, 29, 14, 59), jst(2026, 11, 30, 9)),
    "00:00Z is 09:00 JST": (utc(2026, 11, 25, 0), jst(2026, 11, 25, 10)),
    "23:30Z is 08:30 JST the next day": (utc(2026, 11, 24, 23, 30), jst(2026, 11, 25, 9, 30)),
    "Friday 06:59Z is 15:59 JST": (utc(2026, 11, 27, 6, 59), jst(2026, 11, 27, 17)),
    "Friday 07:00Z is the cutoff": (utc(2026, 11, 27, 7), jst(2026, 11, 30, 9)),
    "Los Angeles evening is Japan afternoon": (datetime(2026, 11, 24, 22, tzinfo=LOS_ANGELES), jst(2026, 11, 25, 16)),
    # Friday 20 Nov 2026 before a three-day weekend (Monday 23rd 勤労感謝の日)
    "Friday before the long weekend, 15:00": (jst(2026, 11, 20, 15), jst(2026, 11, 20, 16)),
    "Friday before the long weekend, 16:00": (jst(2026, 11, 20, 16), jst(2026, 11, 24, 9)),
    "Saturday morning": (jst(2026, 11, 21, 10), jst(2026, 11, 24, 9)),
    "the holiday Monday": (jst(2026, 11, 23, 10), jst(2026, 11, 24, 9)),
    # September 2026: 19-20 weekend, 21 敬老の日, 22 国民の休日, 23 秋分の日
    "Friday before the September run": (jst(2026, 9, 18, 16, 30), jst(2026, 9, 24, 9)),
    "国民の休日": (jst(2026, 9, 22, 11), jst(2026, 9, 24, 9)),
    # Golden Week 2026: 29 Apr, then 2-6 May with the 6 May substitute
    "eve of 昭和の日": (jst(2026, 4, 28, 17), jst(2026, 4, 30, 9)),
    "Friday before Golden Week": (jst(2026, 5, 1, 16), jst(2026, 5, 7, 9)),
    "振替休日 6 May": (jst(2026, 5, 6, 10), jst(2026, 5, 7, 9)),
    # the year-end closure, 29 Dec (Tuesday) to 3 Jan (Sunday)
    "last day of the year, 15:00": (jst(2026, 12, 28, 15), jst(2026, 12, 28, 16)),
    "last day of the year, 16:00": (jst(2026, 12, 28, 16), jst(2027, 1, 4, 9)),
    "last day of the year, 16:00 as UTC": (utc(2026, 12, 28, 7), jst(2027, 1, 4, 9)),
    "New Year's Eve 15:30Z is 元日 in Japan": (utc(2026, 12, 31, 15, 30), jst(2027, 1, 4, 9)),
    "3 Jan, a Sunday": (jst(2027, 1, 3, 12), jst(2027, 1, 4, 9)),
    # 2027: 春分の日 on Sunday 21 Mar, 振替休日 Monday 22nd; 敬老の日 20 Sep, 秋分の日 23 Sep
    "Friday before the equinox substitute": (jst(2027, 3, 19, 16), jst(2027, 3, 23, 9)),
    "the equinox substitute itself": (jst(2027, 3, 22, 8), jst(2027, 3, 23, 9)),
    "Friday before 敬老の日 2027": (jst(2027, 9, 17, 16), jst(2027, 9, 21, 9)),
    "eve of 秋分の日 2027": (jst(2027, 9, 22, 16), jst(2027, 9, 24, 9)),
}


@pytest.mark.parametrize(("received_at", "expected"), EARLIEST_CONTACT.values(), ids=EARLIEST_CONTACT.keys())
def test_earliest_contact(received_at, expected):
    contact = NATIONAL.earliest_contact(received_at)
    assert contact == expected
    assert contact.tzinfo == JST and contact.utcoffset() == timedelta(hours=9)
    assert first_contact_day(received_at) == expected.date()  # the promise on the receipt


def test_a_contact_that_would_fall_at_or_after_closing_moves_to_the_next_open_day():
    late_cutoff = DeskCalendar(cutoff=time(18), lead=timedelta(minutes=30))  # a desk's own choice
    assert late_cutoff.earliest_contact(jst(2026, 11, 25, 17)) == jst(2026, 11, 25, 17, 30)
    assert late_cutoff.earliest_contact(jst(2026, 11, 25, 17, 1)) == jst(2026, 11, 26, 9)


@pytest.mark.parametrize("hours", [dict(cutoff=time(18, 30)), dict(opens=time(18)), dict(slot=timedelta(0))])
def test_desk_hours_that_cannot_work_are_refused(hours):
    with pytest.raises(ValueError, match="desk hours|slots"):
        DeskCalendar(**hours)


def test_a_naive_received_at_is_refused():
    with pytest.raises(ValueError, match="naive datetime 2026-11-25T10:00:00 has no time zone"):
        NATIONAL.earliest_contact(datetime(2026, 11, 25, 10, 0))


def test_a_promise_in_a_year_without_holiday_data_is_refused():
    with pytest.raises(ValueError, match="2100"):  # 29 Dec-3 Jan closed: the next open day is in 2100
        NATIONAL.earliest_contact(jst(2099, 12, 28, 16))


@settings(max_examples=400, deadline=None)
@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2098, 12, 31),
                    timezones=st.sampled_from([UTC, JST, LOS_ANGELES, ZoneInfo("Pacific/Kiritimati")])))
def test_earliest_contact_is_an_open_slot_start_after_the_lead(received_at):
    contact = NATIONAL.earliest_contact(received_at)
    assert NATIONAL.is_open(contact.date())
    assert NATIONAL.opens <= contact.time() < NATIONAL.closes
    assert (contact.minute % 30, contact.second, contact.microsecond) == (0, 0, 0)
    assert contact >= received_at + NATIONAL.lead
    local = to_japan(received_at)
    assert (contact.date() == local.date()) is (NATIONAL.is_open(local.date()) and local.hour < 16)


# --- the phone line --------------------------------------------------------------------------

@pytest.mark.parametrize(("moment", "open_"), [
    (jst(2026, 11, 25, 8, 59), False), (jst(2026, 11, 25, 9), True),
    (jst(2026, 11, 25, 17, 59), True), (jst(2026, 11, 25, 18), False),
    (utc(2026, 11, 25, 0, 30), True), (utc(2026, 11, 25, 9, 30), False),  # 09:30 and 18:30 JST
    (jst(2026, 11, 23, 10), False), (jst(2026, 9, 22, 10), False),  # 勤労感謝の日, 国民の休日
    (jst(2026, 11, 21, 10), False), (jst(2026, 12, 30, 10), False),  # Saturday, year-end closure
])
def test_phone_line_hours(moment, open_):
    assert is_phone_line_open(moment) is open_


# --- naive datetimes and the server's TZ ----------------------------------------------------

@pytest.mark.parametrize("call", [to_japan, japan_date, first_contact_day, is_phone_line_open])
def test_naive_datetime_is_refused(call):
    with pytest.raises(ValueError, match="naive"):
        call(datetime(2026, 11, 25, 10, 0))


def _answers() -> tuple:
    return (
        japan_date(utc(2026, 11, 24, 16)),
        first_contact_day(utc(2026, 11, 24, 16)),  # Wednesday 01:00 JST: contact that morning
        first_contact_day(jst(2026, 11, 20, 19, 45)),
        is_phone_line_open(utc(2026, 11, 25, 0, 30)),
        is_phone_line_open(jst(2026, 11, 25, 18, 0)),
        NATIONAL.earliest_contact(datetime(2026, 11, 24, 16, tzinfo=LOS_ANGELES)),
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
        assert before == (date(2026, 11, 25), date(2026, 11, 25), date(2026, 11, 24), True, False,
                          jst(2026, 11, 25, 10))
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        clock.tzset()


def test_dates_and_slots_are_written_in_japanese_on_the_japan_wall_clock():
    from shared.calendar import japanese_date, japanese_slot

    assert japanese_date(date(2026, 11, 25)) == "2026年11月25日（水）"
    assert japanese_date(date(2027, 1, 4)) == "2027年1月4日（月）"
    # 01:00-02:00 UTC is 10:00-11:00 in Japan; 15:30 UTC on the 24th is already the 25th there
    assert japanese_slot(utc(2026, 11, 25, 1), utc(2026, 11, 25, 2)) == "2026年11月25日（水）10:00〜11:00"
    assert japanese_slot(utc(2026, 11, 24, 15, 30), utc(2026, 11, 24, 16, 30)) == "2026年11月25日（水）00:30〜01:30"
