"""Pure rules of the desk's callback slots: which slots an open day offers, and which days a
consultation may be booked on. Japan time for the rules, aware UTC datetimes out."""
from datetime import date, datetime, time, timedelta, timezone
from itertools import islice

from shared.calendar import JST, DeskCalendar, business_days_from, first_contact_day


def slots_of(day: date, calendar: DeskCalendar | None = None) -> list[tuple[datetime, datetime]]:
    """The callback slots of a Japan date as (starts_at, ends_at) in UTC: back to back, each the
    calendar's slot length (30 min), from opening to closing (9:00-18:00); none on a closed day.
    A last piece shorter than a slot before closing is no slot."""
    calendar = calendar or DeskCalendar.default()
    if not calendar.is_open(day):
        return []
    starts = datetime.combine(day, calendar.opens, tzinfo=JST)
    closes = datetime.combine(day, calendar.closes, tzinfo=JST)  # Japan has no DST: plain arithmetic
    found = []
    while starts + calendar.slot <= closes:
        found.append((_utc(starts), _utc(starts + calendar.slot)))
        starts += calendar.slot
    return found


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The Japan calendar day as a half-open UTC interval [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=JST)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=JST)
    return _utc(start), _utc(end)


def booking_days(promised: date, now: datetime, horizon: int) -> list[date]:
    """The business days to try, earliest first: from the day promised on the receipt, but never
    today or a day already past (a delayed message books from the next business day on)."""
    start = max(promised, first_contact_day(now))
    return list(islice(business_days_from(start), max(horizon, 0)))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)
