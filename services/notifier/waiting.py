"""Nothing waits for ever: the notifier's watch over what waits for an event that may never come.

A task order waits in `pending` for its consultation copy; a copy waits for the verdict or
booking that gives it a task. When that event went to a DLQ it waits silently, so past
`waiting_alert_after_s` it is reported (a gauge, and a WARNING with a few consultation ids for
the DLQ re-drive). A consultation the scheduler found no slot for waits for an operator, not for
an event, and is left out. The watch also refreshes the gauge of possible duplicate e-mails on
record, so supervisors see both on one dashboard.
"""
import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from prometheus_client import Gauge
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.orm import consultations, pending, possible_duplicates, tasks, unschedulable_callbacks
from shared.db import Database
from shared.settings import Settings

log = logging.getLogger("payhara.notifier")
SAMPLE = 5  # consultation ids named in the log: enough to find their events in the DLQs
waiting_too_long = Gauge("payhara_waiting_too_long",
                         "Notifier records waiting for an event longer than waiting_alert_after_s", ["what"])
duplicates_on_record = Gauge("payhara_possible_duplicate_emails_recorded",
                             "Possible duplicate e-mails on record (notifier.possible_duplicates)")


@dataclass(frozen=True)
class Waiting:
    what: str  # task_without_copy | copy_without_task
    count: int
    sample: list  # a few consultation ids, the longest waiting first


async def waiting_since(session: AsyncConnection, cutoff: datetime) -> list[Waiting]:
    """What has been waiting since before `cutoff`."""
    orders = select(pending.c.consultation_id, pending.c.created_at.label("since")).where(
        pending.c.created_at < cutoff)
    copies = select(consultations.c.consultation_id, consultations.c.received_at.label("since")).where(
        consultations.c.received_at < cutoff,
        ~exists().where(tasks.c.consultation_id == consultations.c.consultation_id),
        ~exists().where(unschedulable_callbacks.c.consultation_id == consultations.c.consultation_id))
    return [await _count_and_sample(session, what, query) for what, query in
            (("task_without_copy", orders), ("copy_without_task", copies))]


async def _count_and_sample(session: AsyncConnection, what: str, query) -> Waiting:
    waiting = query.subquery()
    rows = (await session.execute(
        select(waiting.c.consultation_id, func.count().over().label("count"))
        .order_by(waiting.c.since).limit(SAMPLE))).all()
    return Waiting(what, rows[0].count if rows else 0, [row.consultation_id for row in rows])


async def check(sessions: Database, alert_after_s: float, now: datetime | None = None) -> list[Waiting]:
    """One look: set the gauges, warn about what waits too long."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(seconds=alert_after_s)
    async with sessions() as session:
        found = await waiting_since(session, cutoff)
        duplicates_on_record.set(await session.scalar(select(func.count()).select_from(possible_duplicates)))
    for waiting in found:
        waiting_too_long.labels(waiting.what).set(waiting.count)
        if waiting.count:
            log.warning("%d %s for over %.0f s, e.g. consultations %s: its event may be in a DLQ (payhara dlq replay)",
                        waiting.count, waiting.what.replace("_", " "), alert_after_s,
                        ", ".join(str(cid) for cid in waiting.sample))
    return found


async def watch(sessions: Database, settings: Settings) -> None:
    """The loop run alongside the notifier: a look at the start, then every waiting_check_s."""
    while True:
        try:
            await check(sessions, settings.waiting_alert_after_s)
        except Exception as error:  # the database away: look again next time, never end the loop
            log.warning("waiting watch could not look (%s); trying again in %.0f s",
                        type(error).__name__, settings.waiting_check_s)
        await asyncio.sleep(settings.waiting_check_s)
