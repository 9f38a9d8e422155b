"""The desk calendar: which Japan dates the consultation desk works, and what it promises.

Every service uses this one module so that the receipt page, the scheduler's slots and the
e-mail text can never disagree. It is pure: instants come in as aware datetimes, so the answer
never depends on the server's clock or its TZ setting. Closed days are weekends, Japanese
national holidays (substitute and citizens' holidays included, from the `holidays` library),
the year-end closure 29 Dec to 3 Jan, and the desk's own closures from its reviewed calendar
file (shared/calendar_file.py), which can also open a day that would otherwise be closed.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays

from shared.calendar_file import CalendarFileError, DeskDays, read_desk_days  # noqa: F401 (re-exported)

JST = ZoneInfo("Asia/Tokyo")
PHONE_OPENS: time = time(9, 0)
PHONE_CLOSES: time = time(18, 0)
YEAR_END_CLOSURE = "年末年始休業"
WEEKDAYS_JA = "月火水木金土日"
NATIONAL_CALENDAR_ONLY = DeskDays(reviewed_by="", reviewed_on=date.min)  # no desk closures or openings


class DeskCalendar:
    """The desk's open days and hours. Build one directly in tests; services use default()."""

    def __init__(self, days: DeskDays | None = None, *, opens: time = PHONE_OPENS,
                 closes: time = PHONE_CLOSES, cutoff: time = time(16, 0),
                 lead: timedelta = timedelta(minutes=60), slot: timedelta = timedelta(minutes=30)):
        if not (opens <= cutoff <= closes and opens < closes):
            raise ValueError(f"desk hours must run opens {opens} <= same-day cutoff {cutoff} <= closes {closes}")
        if slot <= timedelta(0) or lead < timedelta(0):
            raise ValueError(f"slots must be longer than zero ({slot}) and the lead not negative ({lead})")
        self.days = days or NATIONAL_CALENDAR_ONLY
        self.opens, self.closes, self.cutoff, self.lead, self.slot = opens, closes, cutoff, lead, slot

    @staticmethod
    @cache
    def default() -> DeskCalendar:
        """The desk's calendar: the reviewed file and the hours from the PAYHARA_* settings."""
        from shared.settings import get_settings

        s = get_settings()
        return DeskCalendar(read_desk_days(s.calendar_file), opens=_clock(s, "desk_opens"),
                            closes=_clock(s, "desk_closes"), cutoff=_clock(s, "same_day_cutoff"),
                            lead=timedelta(minutes=s.contact_lead_minutes), slot=timedelta(minutes=s.slot_minutes))

    def closure_reason(self, day: date) -> str | None:
        """Why the desk is closed on `day` in Japanese, or None on an open day. The desk's own
        file wins; then the year-end closure (1 Jan is also a holiday); then the holiday's own
        name (a holiday on a Sunday is named); then the weekend."""
        name = holiday_name(day)  # first, so a year without holiday data is refused whatever the file says
        if day in self.days.openings:
            return None
        if day in self.days.closures:
            return self.days.closures[day]
        if _is_year_end_closure(day):
            return YEAR_END_CLOSURE
        if name is not None:
            return name
        return ("土曜日", "日曜日")[day.weekday() - 5] if day.weekday() >= 5 else None

    def is_open(self, day: date) -> bool:
        return self.closure_reason(day) is None

    def next_open_day(self, day: date) -> date:
        """The first open day strictly after `day`."""
        candidate = day + timedelta(days=1)
        while not self.is_open(candidate):
            candidate += timedelta(days=1)
        return candidate

    def open_days_from(self, day: date) -> Iterator[date]:
        """`day` itself if the desk is open then, then every following open day, endlessly."""
        current = day if self.is_open(day) else self.next_open_day(day)
        while True:
            yield current
            current = self.next_open_day(current)

    def earliest_contact(self, received_at: datetime) -> datetime:
        """The first moment the desk can contact a consultant whose consultation arrived at
        `received_at`: the same day, after the lead time, on the next slot start, if it arrived on
        an open day before the cutoff; else opening time on the next open day. Japan time."""
        local = to_japan(received_at)
        day = local.date()
        if self.is_open(day) and local.time() < self.cutoff:
            opening = datetime.combine(day, self.opens, tzinfo=JST)
            ready = max(local + self.lead, opening)
            contact = opening - ((opening - ready) // self.slot) * self.slot  # up to a slot start
            if contact < datetime.combine(day, self.closes, tzinfo=JST):
                return contact
        return datetime.combine(self.next_open_day(day), self.opens, tzinfo=JST)

    def is_staffed(self, moment: datetime) -> bool:
        """True on an open day within opening hours (from opening, up to but not at closing)."""
        local = to_japan(moment)
        return self.is_open(local.date()) and self.opens <= local.time() < self.closes


def _clock(settings, name: str) -> time:
    try:
        return time.fromisoformat(getattr(settings, name))
    except ValueError:
        raise ValueError(f"PAYHARA_{name.upper()} must be a Japan time like 16:00, "
                         f"not {getattr(settings, name)!r}") from None


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
            f"{year}年の祝日データがありません / no Japanese holiday data for {year} (the holidays "
            f"library covers {holidays.Japan.start_year}-{holidays.Japan.end_year})"
        )
    return holidays.country_holidays("JP", years=year, language="ja", expand=False)


def holiday_name(day: date) -> str | None:
    """The Japanese name of the national holiday on `day` (e.g. "振替休日"), or None."""
    return _japan_holidays(day.year).get(day)


def _is_year_end_closure(day: date) -> bool:
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


# The helpers the services call: the desk's default calendar, so its file applies everywhere.

def closure_reason(day: date) -> str | None:
    return DeskCalendar.default().closure_reason(day)


def is_business_day(day: date) -> bool:
    return DeskCalendar.default().is_open(day)


def next_business_day(day: date) -> date:
    return DeskCalendar.default().next_open_day(day)


def business_days_from(day: date) -> Iterator[date]:
    return DeskCalendar.default().open_days_from(day)


def first_contact_day(received_at: datetime) -> date:
    """The day promised on a receipt: the day of receipt when the desk can still call back that
    day (see DeskCalendar.earliest_contact), else the next open day."""
    return DeskCalendar.default().earliest_contact(received_at).date()


def is_phone_line_open(moment: datetime) -> bool:
    return DeskCalendar.default().is_staffed(moment)


def japanese_date(day: date) -> str:
    """2026-11-25 -> 2026年11月25日（水）: how the desk writes a date to a consultant."""
    return f"{day.year}年{day.month}月{day.day}日（{WEEKDAYS_JA[day.weekday()]}）"


def japanese_slot(starts: datetime, ends: datetime) -> str:
    """A callback slot on the Japan wall clock: 2026年11月25日（水）10:00〜11:00."""
    start, end = to_japan(starts), to_japan(ends)
    return f"{japanese_date(start.date())}{start:%H:%M}〜{end:%H:%M}"
