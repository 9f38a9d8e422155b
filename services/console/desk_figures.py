"""The supervisors' figures, in SQL over the console's own tables (tasks, claims, call_outcomes,
operators): the backlog, the promise share, call attempts per consultation, each operator's work
and the oldest unclaimed task. Days are Japan days, whatever the server's zone. Receipt numbers and
operator display names only: no consultant's data is read here."""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import text

from shared.calendar import JST, japan_date
from shared.db import Database

PROMISE_DAYS = 30  # the promise share and the attempts: today and the 29 days before
WORK_DAYS = 7  # each operator's work: today and the 6 days before

BACKLOG = text("""
SELECT CASE WHEN coalesce(due_ends_at, due_starts_at) < :now THEN 'overdue'  -- as the queue marks it
            WHEN due_starts_at IS NULL THEN 'none'
            ELSE 'day' END                            AS bucket,
       (due_starts_at AT TIME ZONE 'Asia/Tokyo')::date AS due_day,
       kind,
       count(*)                                       AS tasks
FROM console.tasks
WHERE status = 'open'
GROUP BY 1, 2, 3
""")

# A consultation is contacted at its first call outcome (any: the desk tried) or its first
# e-mail task done, whichever is earlier; its promise is the earliest promised day on its tasks.
PROMISE = text("""
WITH promised AS (
    SELECT consultation_id, min(contact_expected_from) AS promised_day
    FROM console.tasks
    GROUP BY consultation_id
), contacts AS (
    SELECT consultation_id, recorded_at AS at FROM console.call_outcomes
    UNION ALL
    SELECT consultation_id, closed_at FROM console.tasks WHERE kind = 'email' AND status = 'done'
), first_contact AS (
    SELECT consultation_id, (min(at) AT TIME ZONE 'Asia/Tokyo')::date AS contacted_day
    FROM contacts
    GROUP BY consultation_id
)
SELECT count(*) FILTER (WHERE contacted_day <= promised_day)                          AS within,
       count(*) FILTER (WHERE contacted_day > promised_day)                           AS late,
       count(*) FILTER (WHERE contacted_day IS NULL AND promised_day < :today)        AS late_waiting,
       count(*) FILTER (WHERE contacted_day IS NULL AND promised_day = :today)        AS due_today
FROM promised LEFT JOIN first_contact USING (consultation_id)
WHERE promised_day BETWEEN :since AND :today
""")

# Consultations whose first call was in the period, by how many calls they have had so far.
ATTEMPTS = text("""
SELECT least(calls, 3) AS calls, count(*) AS consultations
FROM (SELECT consultation_id, count(*) AS calls, min(recorded_at) AS first_call
      FROM console.call_outcomes
      GROUP BY consultation_id) AS per_consultation
WHERE first_call >= :since
GROUP BY 1
""")

# Distinct tasks per operator and period: claimed, from every claim made (console.claims: one
# released, left to expire or taken over later still counts for whoever made it; an extension
# is the same task again); closed, by whoever closed it.
WORK = text("""
WITH work AS (
    SELECT operator_id, task_id, 'claimed' AS what, claimed_at AS at
    FROM console.claims WHERE claimed_at >= :week_from
    UNION ALL
    SELECT closed_by, task_id, 'closed', closed_at
    FROM console.tasks WHERE closed_by IS NOT NULL AND closed_at >= :week_from
)
SELECT o.display_name,
       count(DISTINCT task_id) FILTER (WHERE what = 'claimed' AND at >= :today_from) AS claimed_today,
       count(DISTINCT task_id) FILTER (WHERE what = 'claimed')                       AS claimed_week,
       count(DISTINCT task_id) FILTER (WHERE what = 'closed' AND at >= :today_from)  AS closed_today,
       count(DISTINCT task_id) FILTER (WHERE what = 'closed')                        AS closed_week
FROM work JOIN console.operators AS o ON o.id = work.operator_id
GROUP BY o.id, o.display_name
ORDER BY o.display_name, o.id
""")

OLDEST_UNCLAIMED = text("""
SELECT receipt_no, kind, issued_at
FROM console.tasks
WHERE status = 'open' AND claimed_by IS NULL
ORDER BY issued_at, task_id
LIMIT 1
""")


@dataclass(frozen=True)
class Promise:
    within: int
    late: int  # contacted after the promised day
    late_waiting: int  # not contacted yet, the promised day past
    due_today: int  # not contacted yet, promised for today: not decided, left out of the share


@dataclass(frozen=True)
class OperatorWork:
    display_name: str
    claimed_today: int
    claimed_week: int
    closed_today: int
    closed_week: int


@dataclass(frozen=True)
class Oldest:
    receipt_no: str
    kind: str
    issued_at: datetime


def day_starts(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=JST)


async def backlog_groups(db: Database, now: datetime) -> list[tuple[str, date | None, str, int]]:
    """(bucket, Japan due day, kind, open tasks), for desk_rules.backlog_rows."""
    async with db() as conn:
        return [tuple(row) for row in (await conn.execute(BACKLOG, {"now": now})).all()]


async def promise(db: Database, now: datetime) -> Promise:
    today = japan_date(now)
    async with db() as conn:
        row = (await conn.execute(PROMISE, {"today": today,
                                            "since": today - timedelta(days=PROMISE_DAYS - 1)})).one()
    return Promise(**row._asdict())


async def attempts(db: Database, now: datetime) -> dict[int, int]:
    """{1: consultations called once, 2: twice, 3: three times or more}."""
    since = day_starts(japan_date(now) - timedelta(days=PROMISE_DAYS - 1))
    async with db() as conn:
        found = dict((await conn.execute(ATTEMPTS, {"since": since})).all())
    return {calls: found.get(calls, 0) for calls in (1, 2, 3)}


async def work(db: Database, now: datetime) -> list[OperatorWork]:
    today = japan_date(now)
    async with db() as conn:
        rows = (await conn.execute(WORK, {"today_from": day_starts(today),
                                          "week_from": day_starts(today - timedelta(days=WORK_DAYS - 1))})).all()
    return [OperatorWork(**row._asdict()) for row in rows]


async def oldest_unclaimed(db: Database) -> Oldest | None:
    async with db() as conn:
        row = (await conn.execute(OLDEST_UNCLAIMED)).first()
    return Oldest(**row._asdict()) if row else None
