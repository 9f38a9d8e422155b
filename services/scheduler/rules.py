"""Pure booking rules: which slots of a day fit a consultant's preferred time, and how many seats
of a slot a booking may fill. No I/O; the SQL of booking.py applies the same rules.

Preferred time, by the slot's start on the Japan wall clock:
- morning: slots starting before 12:00 (9:00-11:30 with the default hours);
- afternoon: slots starting at 13:00 or later (13:00-17:30);
- any: every slot of the day, 12:00-13:00 included. A consultant who chose a half of the day is
  not called over lunch, which belongs to neither half.

Urgent seats: a slot keeps `capacity // urgent_seats_one_in` seats (1 of 4 by default, none of a
slot with fewer than 4) for urgent consultations. A booking that is not urgent may fill a slot up
to `capacity - reserved`; an urgent one up to `capacity`.
"""
from datetime import date, datetime, time

from shared.calendar import JST
from shared.events import PreferredTime

MORNING_ENDS = time(12)
AFTERNOON_STARTS = time(13)
ANY: PreferredTime = "any"


def window(day: date, preferred: PreferredTime) -> tuple[datetime, datetime] | None:
    """The half-open interval of slot starts that fit `preferred` on `day` (Japan time, aware);
    None for the whole day."""
    if preferred == "morning":
        return datetime.combine(day, time(0), tzinfo=JST), datetime.combine(day, MORNING_ENDS, tzinfo=JST)
    if preferred == "afternoon":
        return datetime.combine(day, AFTERNOON_STARTS, tzinfo=JST), datetime.combine(day, time.max, tzinfo=JST)
    return None


def fits(starts_at: datetime, preferred: PreferredTime) -> bool:
    """True when a slot starting at `starts_at` (aware) fits the preferred time."""
    bounds = window(starts_at.astimezone(JST).date(), preferred)
    return bounds is None or bounds[0] <= starts_at < bounds[1]


def reserved(capacity: int, one_in: int) -> int:
    """Seats of a slot kept for urgent consultations (none when `one_in` is 0)."""
    return capacity // one_in if one_in > 0 else 0


def seat_limit(capacity: int, urgent: bool, one_in: int) -> int:
    """How far a booking may fill a slot of `capacity`: it takes a seat while `booked < limit`."""
    return capacity if urgent else capacity - reserved(capacity, one_in)


def limit_sql(slot: str = "") -> str:
    """seat_limit in SQL, for the statements that take or count seats (`slot` is a table alias
    with its dot): the capacity less the seats kept, `:keep` being 0 for an urgent booking or
    when nothing is kept. Its parameters: limit_params."""
    return f"({slot}capacity - {slot}capacity / :one_in * :keep)"


def limit_params(one_in: int, urgent: bool) -> dict:
    """The parameters of limit_sql for a booking that is urgent or not."""
    return {"one_in": max(one_in, 1), "keep": 0 if urgent or one_in <= 0 else 1}
