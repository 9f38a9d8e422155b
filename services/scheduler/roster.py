"""The roster: how many callbacks each slot of a day takes. The weekly roster of the settings
(PAYHARA_SLOT_CAPACITY, PAYHARA_SLOT_CAPACITY_BY_WEEKDAY) gives the usual capacity of a weekday;
an operator sets a date's own with `payhara roster set` (a row of scheduler.roster, with who and
when). A day's slots take their capacity when they are created (lazily, by the first booking
that visits the day: create_day); a date set later moves the capacity of its existing slots,
never under what a slot has booked.

Why a roster change cannot be lost nor deadlock with bookings: it first creates the day's slots
itself with the same INSERT ... ON CONFLICT a booking uses, so it waits for a booking creating
the day at the same moment (which read the roster before this change) and then sees its slots;
it then locks the day's slots in time order, like a booking, holding nothing else a booking waits
for. Lowering a capacity is the one way a slot loses room: a booking that waited for that slot
finds it full, so at worst it books a later slot (booking.py's order argument is about locks).
"""
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from itertools import takewhile

from sqlalchemy import DateTime, bindparam, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scheduler import availability
from services.scheduler.orm import roster, slots
from services.scheduler.slots import day_bounds, slots_of
from shared.calendar import DeskCalendar, japanese_date, to_japan
from shared.db import Database
from shared.settings import Settings

LOCK_WAIT = "5s"

# The day's own capacity if the roster has one, else the weekly one: read in the same statement
# as the insert, so a day's slots never mix two capacities.
CREATE_DAY = text("""
INSERT INTO scheduler.slots (starts_at, ends_at, capacity)
SELECT s.starts_at, s.ends_at, coalesce((SELECT capacity FROM scheduler.roster WHERE day = :day), :weekly)
FROM unnest(:starts, :ends) AS s(starts_at, ends_at)
ON CONFLICT (starts_at) DO NOTHING
""").bindparams(bindparam("starts", type_=ARRAY(DateTime(timezone=True))),
                bindparam("ends", type_=ARRAY(DateTime(timezone=True))))

LOCK_DAY = text("""
SELECT starts_at, booked FROM scheduler.slots WHERE starts_at >= :day_start AND starts_at < :day_end
ORDER BY starts_at FOR UPDATE
""")

SEATS_BY_DAY = text("""
SELECT (starts_at AT TIME ZONE 'Asia/Tokyo')::date AS day, sum(capacity) AS seats, sum(booked) AS booked
FROM scheduler.slots WHERE starts_at >= :start AND starts_at < :end GROUP BY 1
""")


class RosterRefused(ValueError):
    """A roster change that would break a promise; the message says why in Japanese and English."""


@dataclass(frozen=True)
class RosterDay:
    day: date
    capacity: int
    set_by: str | None  # None: the weekly roster
    set_at: datetime | None
    seats: int | None  # the day's slots: None while no booking has visited the day
    booked: int | None


async def create_day(session: AsyncConnection, day: date, weekly: int) -> bool:
    """Create the slots of an open day with the roster's capacity; False on a closed day. It waits
    for whoever is creating the day, or booking on it, right now."""
    day_slots = slots_of(day)
    if not day_slots:
        return False
    await session.execute(CREATE_DAY, {"day": day, "weekly": weekly,
                                       "starts": [s for s, _ in day_slots], "ends": [e for _, e in day_slots]})
    return True


async def set_capacity(sessions: Database, settings: Settings, day: date, capacity: int, by: str,
                       now: datetime | None = None) -> None:
    """Give `day` its own capacity per slot, and its existing slots that capacity. Raises
    RosterRefused (and changes nothing) for a closed or past day, or a slot booked above it."""
    now = now or datetime.now(timezone.utc)
    calendar = DeskCalendar.default()
    if capacity < 0:
        raise RosterRefused(f"定員は0以上です / the capacity must be 0 or more (got {capacity})")
    if not calendar.is_open(day):
        raise RosterRefused(f"{japanese_date(day)} は休業日です（{calendar.closure_reason(day)}）"
                            f" / the desk is closed on {day}: nothing to roster")
    if day < to_japan(now).date():
        raise RosterRefused(f"{japanese_date(day)} は過ぎた日です / {day} is past")
    async with sessions.begin() as session:
        await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        row = {"day": day, "capacity": capacity, "set_by": by, "set_at": now}
        upsert = pg_insert(roster).values(row)
        await session.execute(upsert.on_conflict_do_update(
            index_elements=[roster.c.day], set_={k: upsert.excluded[k] for k in row if k != "day"}))
        await create_day(session, day, capacity)
        day_start, day_end = day_bounds(day)
        held = (await session.execute(LOCK_DAY, {"day_start": day_start, "day_end": day_end})).all()
        fullest = max(held, key=lambda slot: slot.booked)
        if fullest.booked > capacity:  # the transaction rolls back: the roster row too
            raise RosterRefused(
                f"{japanese_date(day)} {to_japan(fullest.starts_at):%H:%M} の枠はすでに{fullest.booked}件予約済みです。"
                f"定員を{fullest.booked}未満にはできません / the slot at {to_japan(fullest.starts_at):%H:%M} on {day} "
                f"already has {fullest.booked} bookings: its capacity cannot go below {fullest.booked}")
        await session.execute(slots.update().where(slots.c.starts_at >= day_start, slots.c.starts_at < day_end)
                              .values(capacity=capacity))
        await availability.publish_if_changed(session, settings, now)  # the first free day may move


async def month(sessions: Database, settings: Settings, year: int, month_no: int) -> list[RosterDay]:
    """Each open day of the month with its capacity per slot, where it comes from, and its seats."""
    calendar = DeskCalendar.default()
    first = date(year, month_no, 1)
    after = date(year + month_no // 12, month_no % 12 + 1, 1)
    async with sessions() as session:
        own = {r.day: r for r in await session.execute(
            select(roster).where(roster.c.day >= first, roster.c.day < after))}
        seats = {r.day: r for r in await session.execute(
            SEATS_BY_DAY, {"start": day_bounds(first)[0], "end": day_bounds(after)[0]})}
    days = []
    for day in takewhile(lambda d: d < after, calendar.open_days_from(first)):
        set_, taken = own.get(day), seats.get(day)
        days.append(RosterDay(day, set_.capacity if set_ else settings.weekly_capacity(day),
                              set_.set_by if set_ else None, set_.set_at if set_ else None,
                              int(taken.seats) if taken else None, int(taken.booked) if taken else None))
    return days


# --- `payhara roster` ------------------------------------------------------------------------

def run_set(day_text: str, capacity: int, by: str) -> int:
    """0 when set; 2 for input it cannot read or a change it refuses; 1 when the database is away."""
    from services.calendar_report import parse_day

    def work():
        day = parse_day(day_text)
        _with_database(lambda sessions, settings: set_capacity(sessions, settings, day, capacity, by))
        return f"{japanese_date(day)} 1枠あたり{capacity}件 / {day}: {capacity} callbacks per slot (set by {by})"

    return _answer(work)


def run_show(month_text: str) -> int:
    from services.calendar_report import parse_month

    def work():
        year, month_no = parse_month(month_text)
        days = _with_database(lambda sessions, settings: month(sessions, settings, year, month_no))
        return month_report(year, month_no, days)

    return _answer(work)


def _answer(work) -> int:
    """Print what `work()` returns (0), or why it could not be done: 2 for input it cannot read or
    a change it refuses, 1 when the database is away."""
    try:
        print(work())
        return 0
    except ValueError as error:  # BadInput, RosterRefused, a year without holiday data
        print(f"payhara roster: {error}", file=sys.stderr)
        return 2
    except (OSError, SQLAlchemyError) as error:
        print(f"payhara roster: データベースに接続できないか応答がありません / the database is unreachable or busy ({type(error).__name__})",
              file=sys.stderr)
        return 1


def month_report(year: int, month_no: int, days: list[RosterDay]) -> str:
    """A line per open day: capacity per slot, who set it (else the weekly roster), seats booked."""
    lines = [f"{year}年{month_no}月  1枠あたりの件数 / callbacks per slot"]
    for d in days:
        source = (f"指定 {d.set_by} {to_japan(d.set_at):%Y-%m-%d %H:%M}" if d.set_by is not None
                  else "週の定員 (weekly)")
        booked = f"  予約 {d.booked}/{d.seats}" if d.seats is not None else ""
        lines.append(f"  {japanese_date(d.day)[5:]:<12}{d.capacity:>3}  {source}{booked}")
    return "\n".join(lines)


def _with_database(work):
    import asyncio

    from shared.db import make_engine, make_sessions
    from shared.settings import get_settings

    async def run():
        settings = get_settings()
        engine = make_engine(settings, pool_size=1)
        try:
            return await work(make_sessions(engine), settings)
        finally:
            await engine.dispose()

    return asyncio.run(run())
