"""Use case of the supervisors' view (`GET /supervisor`, `GET /api/v1/supervisor`): every figure
at one moment. The database figures come from desk_figures.py, their rows from desk_rules.py, the
dead letters from the broker (None when it cannot be asked). Nothing here is a view of personal
data: nothing is recorded in data_views."""
import asyncio
from dataclasses import dataclass
from datetime import date, datetime

from services.console import desk_figures as figures
from services.console.dead_letter_count import dead_letter_total
from services.console.desk_rules import BacklogRow, backlog_rows, share_percent
from shared.calendar import DeskCalendar, japan_date
from shared.db import Database
from shared.settings import Settings


@dataclass(frozen=True)
class DeskFigures:
    at: datetime
    today: date
    backlog: list[BacklogRow]
    by_kind: dict[str, int]  # open tasks by kind, most first
    promise: figures.Promise
    share: float | None  # percent within the promise, of within + late + late_waiting
    attempts: dict[int, int]
    work: list[figures.OperatorWork]
    dead_letters: int | None
    oldest: figures.Oldest | None

    @property
    def open_tasks(self) -> int:
        return sum(row.tasks for row in self.backlog)


async def desk_figures(db: Database, settings: Settings, now: datetime,
                       calendar: DeskCalendar | None = None) -> DeskFigures:
    calendar = calendar or DeskCalendar.default()
    today = japan_date(now)
    counting = asyncio.create_task(dead_letter_total(settings.amqp_url))  # while the database answers
    try:  # one query after the other: one pooled connection at a time
        groups, promise = await figures.backlog_groups(db, now), await figures.promise(db, now)
        attempts, oldest = await figures.attempts(db, now), await figures.oldest_unclaimed(db)
        work = await figures.work(db, now)
    except BaseException:
        counting.cancel()
        raise
    dead_letters = await counting
    by_kind: dict[str, int] = {}
    for _, _, kind, n in groups:
        by_kind[kind] = by_kind.get(kind, 0) + n
    return DeskFigures(
        at=now, today=today, backlog=backlog_rows(groups, today, calendar.open_days_from(today)),
        by_kind=dict(sorted(by_kind.items(), key=lambda item: (-item[1], item[0]))), promise=promise,
        share=share_percent(promise.within, promise.late + promise.late_waiting), attempts=attempts,
        work=work, dead_letters=dead_letters, oldest=oldest)
