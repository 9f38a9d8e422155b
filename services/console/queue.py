"""Use cases of the queue, the page operators start from: the open tasks due by the end of today
on the Japan calendar (the overdue ones among them) and those without a due time; and, on a tab
of their own, the tasks due on later days. Whatever the server's clock or zone says."""
from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Row

from services.console.orm import tasks
from services.console.tasks import open_tasks
from shared.calendar import JST, japan_date
from shared.db import Database


def start_of_tomorrow(now: datetime) -> datetime:
    """Midnight at the end of today, in Japan."""
    return datetime.combine(japan_date(now) + timedelta(days=1), time(0), tzinfo=JST)


async def due_by_today(db: Database, now: datetime) -> list[Row]:
    """Overdue and today's tasks by due time, then the tasks without one (oldest first)."""
    return await open_tasks(db, due_before=start_of_tomorrow(now))


async def due_later(db: Database, now: datetime) -> list[Row]:
    """Tasks due from tomorrow on, by due time."""
    return await open_tasks(db, due_from=start_of_tomorrow(now))


async def counts(db: Database, now: datetime) -> tuple[int, int]:
    """(open tasks by today, open tasks on later days), for the tabs."""
    horizon = start_of_tomorrow(now)
    later = tasks.c.due_starts_at >= horizon
    async with db() as conn:
        row = (await conn.execute(select(func.count().filter(~later | tasks.c.due_starts_at.is_(None)),
                                         func.count().filter(later)).where(tasks.c.status == "open"))).one()
    return row[0], row[1]
