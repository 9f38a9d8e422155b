"""Replies by e-mail: a consultant who asked to be contacted by e-mail gets a reply due on an open
day, written whenever an operator has time that day, not at a set hour. Each open day takes
PAYHARA_EMAIL_CAPACITY_PER_DAY replies (the day's row is created by its first booking); the
preferred time and urgency of a phone callback do not apply. The booking's callback.scheduled.v1
carries `by_email` and spans the day's opening hours (9:00-18:00), so the operator's task is due
that day.

Lock order: a transaction books e-mail days only (booking.py books them in a group of their own),
one row per day, days forward only, as Seats does with slots; it waits only for a day later than
every day it holds.
"""
from datetime import date, datetime, timezone
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.calendar import JST, DeskCalendar

CREATE_DAY = text("INSERT INTO scheduler.email_days (day, capacity) VALUES (:day, :capacity) ON CONFLICT DO NOTHING")
TAKE_REPLY = text("UPDATE scheduler.email_days SET booked = booked + 1 WHERE day = :day AND booked < capacity "
                  "RETURNING day")


class EmailDay(NamedTuple):
    """A reply by e-mail due on `day`, within the desk's hours."""
    day: date
    starts_at: datetime
    ends_at: datetime


class EmailDays:
    """The e-mail replies one transaction books, with the interface of Seats."""

    def __init__(self, session: AsyncConnection, capacity: int):
        self.session = session
        self.capacity = capacity
        self.created: set[date] = set()
        self.full: set[date] = set()

    async def take_first(self, days: list[date], not_before: datetime | None = None) -> EmailDay | None:
        """A reply on the first of `days` with room (the days are the consultation's own, none
        before its earliest contact); a day found full is not tried again."""
        for day in days:
            if day in self.full:
                continue
            if day not in self.created:
                await self.session.execute(CREATE_DAY, {"day": day, "capacity": self.capacity})
                self.created.add(day)
            if await self.session.scalar(TAKE_REPLY, {"day": day}) is not None:
                return due_on(day)
            self.full.add(day)
        return None


def due_on(day: date, calendar: DeskCalendar | None = None) -> EmailDay:
    calendar = calendar or DeskCalendar.default()
    return EmailDay(day, datetime.combine(day, calendar.opens, tzinfo=JST).astimezone(timezone.utc),
                    datetime.combine(day, calendar.closes, tzinfo=JST).astimezone(timezone.utc))
