"""The desk calendar: which Japan dates the consultation desk works, and what it promises.

Every service uses this one module so that the receipt page, the scheduler's slots and the
e-mail text can never disagree. It is pure: instants come in as aware datetimes, so the answer
never depends on the server's clock or its TZ setting. Closed days are weekends, Japanese
national holidays (substitute and citizens' holidays included, from the `holidays` library)
and the year-end closure, 29 Dec to 3 Jan.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

JST = ZoneInfo("Asia/Tokyo")
PHONE_OPENS: time = time(9, 0)
PHONE_CLOSES: time = time(18, 0)

WEEKEND = "weekend"
NATIONAL_HOLIDAY = "national_holiday"
YEAR_END_CLOSURE = "year_end_closure"


def to_japan(moment: datetime) -> datetime:
    """The same instant on the Japan wall clock. A naive datetime is a programming error."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"naive datetime {moment.isoformat()} has no time zone; "
            "pass an aware datetime (e.g. datetime.now(timezone.utc)) so the desk knows "
            "which instant is meant"
        )
    return moment.astimezone(JST)


def japan_date(moment: datetime) -> date:
    """The calendar date in Japan at the aware instant `moment`."""
    return to_japan(moment).date()


@lru_cache(maxsize=None)
def _japan_holidays(year: int) -> holidays.HolidayBase:
    # One immutable object per year: lookups never expand it, so the cache stays honest.
    if not holidays.Japan.start_year <= year <= holidays.Japan.end_year:
        # Outside its range the library silently returns no holidays; a holiday would then
        # become a business day, so refuse instead.
        raise ValueError(
            f"no Japanese holiday data for {year} (the holidays library covers "
            f"{holidays.Japan.start_year}-{holidays.Japan.end_year})"
        )
    return holidays.country_holidays("JP", years=year, language="ja", expand=False)


def holiday_name(day: date) -> str | None:
    """The Japanese name of the national holiday on `day` (e.g. "振替休日"), or None."""
    return _japan_holidays(day.year).get(day)


def _is_year_end_closure(day: date) -> bool:
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def closure_reason(day: date) -> str | None:
    """Why the desk is closed on `day`, or None on a business day.

    When reasons overlap the most specific one wins: the year-end closure (1 Jan is also a
    holiday), then the national holiday (a holiday on a Sunday), then the weekend.
    """
    if _is_year_end_closure(day):
        return YEAR_END_CLOSURE
    if holiday_name(day) is not None:
        return NATIONAL_HOLIDAY
    if day.weekday() >= 5:
        return WEEKEND
    return None


def is_business_day(day: date) -> bool:
    return closure_reason(day) is None


def next_business_day(day: date) -> date:
    """The first business day strictly after `day`."""
    candidate = day + timedelta(days=1)
    while not is_business_day(candidate):
        candidate += timedelta(days=1)
    return candidate


def business_days_from(day: date) -> Iterator[date]:
    """`day` itself if it is a business day, then every following business day, endlessly."""
    current = day if is_business_day(day) else next_business_day(day)
    while True:
        yield current
        current = next_business_day(current)


def first_contact_day(received_at: datetime) -> date:
    """The day promised on a receipt: the first business day after the Japan date of receipt.

    The desk may reach the consultant sooner, on the day of receipt; this is the day promised.
    """
    return next_business_day(japan_date(received_at))


def is_phone_line_open(moment: datetime) -> bool:
    """True on a Japan business day from 9:00 up to (not including) 18:00 Japan time."""
    local = to_japan(moment)
    return is_business_day(local.date()) and PHONE_OPENS <= local.time() < PHONE_CLOSES


WEEKDAYS_JA = "月火水木金土日"


def japanese_date(day: date) -> str:
    """2026-11-25 -> 2026年11月25日（水）: how the desk writes a date to a consultant."""
    return f"{day.year}年{day.month}月{day.day}日（{WEEKDAYS_JA[day.weekday()]}）"


def japanese_slot(starts: datetime, ends: datetime) -> str:
    """A callback slot on the Japan wall clock: 2026年11月25日（水）10:00〜11:00."""
    start, end = to_japan(starts), to_japan(ends)
    return f"{japanese_date(start.date())}{start:%H:%M}〜{end:%H:%M}"
