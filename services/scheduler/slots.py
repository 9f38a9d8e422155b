"""Pure rules of the desk's callback slots: which hours a business day offers, and which days a
consultation may be booked on. Japan time for the rules, aware UTC datetimes out."""
from datetime import date, datetime, time, timedelta, timezone
from itertools import islice

from shared.calendar import JST, business_days_from, first_contact_day, is_business_day

# One-hour callback slots, Japan time: inside the phone line's 9-18 hours, none over lunch.
SLOT_HOURS: tuple[tuple[time, time], ...] = (
    (time(10), time(11)),
    (time(11), time(12)),
    (time(13), time(14)),
    (time(14), time(15)),
    (time(15), time(16)),
    (time(16), time(17)),
)


def slots_of(day: date) -> list[tuple[datetime, datetime]]:
    """The callback slots of a Japan date as (starts_at, ends_at) in UTC; none on a closed day."""
    if not is_business_day(day):
        return []
    return [(_utc(day, start), _utc(day, end)) for start, end in SLOT_HOURS]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The Japan calendar day as a half-open UTC interval [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=JST)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=JST)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def booking_days(promised: date, now: datetime, horizon: int) -> list[date]:
    """The business days to try, earliest first: from the day promised on the receipt, but never
    today or a day already past (a delayed message books from the next business day on)."""
    start = max(promised, first_contact_day(now))
    return list(islice(business_days_from(start), max(horizon, 0)))


def _utc(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=JST).astimezone(timezone.utc)
