"""The scheduler's word on availability: the first open day on which a consultation received now
can still get a callback. Intake promises the later of this day and the calendar's own
(services/intake/promise.py), so a receipt never promises a day that is already full.

A day counts as free while it has more than `availability_margin` seats left in slots a
consultation received now could take (not counting the seats kept for urgent ones): the seats under the margin are kept for the consultations
promised that day while this news travels to intake, so the promise is never earlier than the
booking. Published (schedule.availability_changed.v1) only when the day or the busy flag
changes: after a booking batch, and once a minute as the day passes. Replies by e-mail have
their own daily capacity (email_days.py), so their first free day is worked out and published
the same way, beside it.
"""
import asyncio
import logging
import uuid
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scheduler.orm import availability, outbox
from services.scheduler.rules import limit_params, limit_sql
from shared import events as ev
from shared.calendar import DeskCalendar
from shared.db import Database
from shared.outbox import add_event
from shared.settings import Settings

log = logging.getLogger("payhara.scheduler")
DESK = uuid.UUID(int=0)  # the correlation id of news about the desk, not about one consultation
LOOK_AHEAD_DAYS = 400  # calendar days: past this the desk is not "busy", it is broken
AVAILABILITY_KEY = 0x7A11  # advisory lock: instances publish one change, not one each

# seats of call slots a consultation that is not urgent may take (the seats kept for urgent ones
# do not count), and replies by e-mail left, by day: one round trip
FREE_BY_DAY = text(f"""
SELECT false AS by_email, (starts_at AT TIME ZONE 'Asia/Tokyo')::date AS day,
       sum(greatest({limit_sql()} - booked, 0)) AS free
FROM scheduler.slots WHERE starts_at >= :earliest AND starts_at < :until
GROUP BY 2
UNION ALL
SELECT true, day, capacity - booked FROM scheduler.email_days
WHERE day >= (:earliest AT TIME ZONE 'Asia/Tokyo')::date AND day < (:until AT TIME ZONE 'Asia/Tokyo')::date
""")


def first_free_day(calendar: DeskCalendar, earliest: datetime, free_by_day: dict[date, int], margin: int) -> date:
    """Pure: the first open day from `earliest` on with more than `margin` free seats; a day the
    scheduler has not opened slots on yet is free."""
    day = earliest.date() if calendar.is_open(earliest.date()) else calendar.next_open_day(earliest.date())
    for _ in range(LOOK_AHEAD_DAYS):
        if free_by_day.get(day, margin + 1) > margin:
            return day
        day = calendar.next_open_day(day)
    raise RuntimeError(f"no free day within {LOOK_AHEAD_DAYS} days of {earliest.date()}")


async def publish_if_changed(session: AsyncConnection, settings: Settings, now: datetime | None = None,
                             calendar: DeskCalendar | None = None) -> ev.ScheduleAvailabilityChanged | None:
    """In the caller's transaction: work out the first free day and stage the news if it changed."""
    calendar = calendar or DeskCalendar.default()
    now = now or datetime.now(timezone.utc)
    earliest = calendar.earliest_contact(now)
    free: dict[bool, dict[date, int]] = {False: {}, True: {}}
    for row in await session.execute(FREE_BY_DAY, {
            "earliest": earliest, "until": earliest + timedelta(days=LOOK_AHEAD_DAYS),
            **limit_params(settings.urgent_seats_one_in, urgent=False)}):
        free[row.by_email][row.day] = int(row.free)
    margin = settings.availability_margin
    word = {"first_free_day": first_free_day(calendar, earliest, free[False], margin),
            "first_free_email_day": first_free_day(calendar, earliest, free[True], margin)}
    word["busy"] = word["first_free_day"] > earliest.date()
    if await _unchanged(session, word):  # the usual case: no lock, no write
        return None
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AVAILABILITY_KEY})
    if await _unchanged(session, word):  # another instance has just said so
        return None
    row = {"id": 1, **word, "as_of": now}
    statement = pg_insert(availability).values(row)
    await session.execute(statement.on_conflict_do_update(
        index_elements=[availability.c.id], set_={k: statement.excluded[k] for k in row if k != "id"}))
    news = ev.ScheduleAvailabilityChanged(**word, as_of=now)
    await add_event(session, outbox, news, DESK)
    log.info("availability changed: first free day %s%s, for replies by e-mail %s", word["first_free_day"],
             " (busy)" if word["busy"] else "", word["first_free_email_day"])
    return news


async def _unchanged(session: AsyncConnection, word: dict) -> bool:
    last = (await session.execute(select(*(availability.c[k] for k in word)))).first()
    return last is not None and last._asdict() == word


async def watch(sessions: Database, settings: Settings) -> None:
    """Once a minute: the day passes (the cutoff, the last slots of today) without any booking."""
    while True:
        try:
            async with sessions.begin() as session:
                await publish_if_changed(session, settings)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the database away: the next minute will tell
            log.warning("availability not checked: %s", type(error).__name__)
        await asyncio.sleep(60)

