"""The seats of callback slots one transaction takes, for bookings of one preferred time and one
urgency: the conditional update that takes a seat, and the wait for a slot in flight. Why this
cannot over-book or deadlock: booking.py's docstring."""
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scheduler import roster, rules
from services.scheduler.slots import day_bounds
from shared import events as ev
from shared.settings import Settings

ROUNDS_PER_DAY = 3  # after a wait the awaited slot is ours, so the next round takes it


# `e.booked < limit - 1`: an earlier slot keeps a seat even after its holder commits, so taking
# a later one would leave a gap in the window. (A slot with one seat left is only ever held by a
# booking of that seat: WAIT_FOR_SEAT locks slots with two or more.) `:day_start`/`:day_end`
# bound the window of the day the booking may take: its preferred time, from `not_before` on.
TAKE_SLOT = text(f"""
UPDATE scheduler.slots SET booked = booked + 1
WHERE id = (
    SELECT s.id FROM scheduler.slots s
    WHERE s.starts_at >= :day_start AND s.starts_at < :day_end AND s.booked < {rules.limit_sql("s.")}
      AND NOT EXISTS (
          SELECT 1 FROM scheduler.slots e
          WHERE e.starts_at >= :day_start AND e.starts_at < s.starts_at AND e.booked < {rules.limit_sql("e.")} - 1)
    ORDER BY s.starts_at LIMIT 1 FOR UPDATE SKIP LOCKED)
  AND booked < {rules.limit_sql()}
RETURNING id, starts_at, ends_at
""")

# TAKE_SLOT found nothing: every slot it may take is held by another booking. Wait for the
# first slot that keeps a free seat after its holder commits (and lock it for us). No such
# slot means the window's last seats are all being booked right now: it is full.
WAIT_FOR_SEAT = text(f"""
SELECT id FROM scheduler.slots
WHERE starts_at >= :day_start AND starts_at < :day_end AND booked < {rules.limit_sql()} - 1
ORDER BY starts_at LIMIT 1 FOR UPDATE
""")


class Seats:
    """The seats one transaction takes, day by day, for bookings of one preferred time and one
    urgency (the lock order needs no more): it creates a day's slots on its first visit of the
    day only (with the roster's capacity for the day, else the weekly one), and does not try
    again a day it found full."""

    class For(NamedTuple):
        """The bookings of one transaction: their preferred time, whether urgent, and whether by
        e-mail (then EmailDays books them, not Seats)."""
        preferred: ev.PreferredTime = "any"
        urgent: bool = False
        by_email: bool = False

    def __init__(self, session: AsyncConnection, settings: Settings, kind: For = For()):
        self.session = session
        self.weekly = settings.weekly_capacity
        self.preferred = kind.preferred
        self.limit = rules.limit_params(settings.urgent_seats_one_in, kind.urgent)
        self.created: set[date] = set()
        self.full: set[date] = set()

    async def take_first(self, days: list[date], not_before: datetime | None = None) -> Row | None:
        """One seat in the earliest slot with room on the first of `days` that has one, starting
        at or after `not_before`. A day found full is not tried again, so the calls of one
        transaction must come with `not_before` in increasing order."""
        for day in days:
            if day not in self.full:
                slot = await self.take(day, not_before)
                if slot is not None:
                    return slot
                self.full.add(day)
        return None

    async def take(self, day: date, not_before: datetime | None = None) -> Row | None:
        """One seat in the earliest slot of `day` with room (from `not_before` on); None when
        the day is full (from then on)."""
        if day not in self.created:
            # this waits for the creators of the day, and for every booking in flight on it too:
            # so a batch creates a day on its first visit only, before it holds a seat there
            if not await roster.create_day(self.session, day, self.weekly(day)):
                return None
            self.created.add(day)
        day_start, day_end = rules.window(day, self.preferred) or day_bounds(day)
        bounds = {"day_start": max(day_start, not_before or day_start), "day_end": day_end, **self.limit}
        if bounds["day_start"] >= day_end:
            return None  # the window is past
        for _ in range(ROUNDS_PER_DAY):
            slot = (await self.session.execute(TAKE_SLOT, bounds)).first()
            if slot is not None:
                return slot
            if await self.session.scalar(WAIT_FOR_SEAT, bounds) is None:
                # only last seats are left: one may have been freed meanwhile, else all are in flight
                return (await self.session.execute(TAKE_SLOT, bounds)).first()
        return None
