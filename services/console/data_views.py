"""Use cases of the audit of personal data. Every page or API answer that shows consultations'
personal data (name, contact, summary) leaves one row per consultation shown: the operator, the
time, the consultation, and what showed it. It is written in the request, in one statement,
before the answer goes out: no record, no view. Supervisors search the rows (/audit, newest
first); they are kept `console_data_views_keep_days`, then purged with the sessions."""
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.engine import Row

from services.console.accounts import Operator
from services.console.orm import data_views, operators
from shared.db import Database

# what showed the data, as a supervisor reads it
WHAT = {
    "queue": "対応待ちの一覧（今日まで）",
    "upcoming": "対応待ちの一覧（明日以降）",
    "task": "タスクの画面",
    "review": "会員確認の画面",
    "api_tasks": "API：タスクの一覧",
    "api_task": "API：タスク",
    "api_claim": "API：担当する",
    "api_release": "API：担当をやめる",
    "api_review": "API：会員確認",
}
PAGE_SIZE = 50
PURGE_BATCH = 5000  # rows per delete: each one well within the statement timeout
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\u30FC]+")


def what_label(what: str) -> str:
    return WHAT.get(what, f"その他（{what}）")


async def record(db: Database, operator: Operator, what: str, shown: Iterable, now: datetime) -> int:
    """One row per consultation among `shown` (rows with consultation_id and receipt_no): a
    consultation listed by two of its tasks was seen once."""
    seen = {row.consultation_id: row.receipt_no for row in shown}
    if seen:
        async with db.begin() as conn:
            await conn.execute(insert(data_views).values([
                {"operator_id": operator.id, "consultation_id": consultation_id, "receipt_no": receipt_no,
                 "what": what, "at": now} for consultation_id, receipt_no in seen.items()]))
    return len(seen)


def typed_receipt_no(typed: str | None) -> str:
    """A receipt number as a supervisor may type it ('ｐｈ－２６１１３０－０２５７８ ') as it is kept."""
    return _SEPARATORS.sub("-", unicodedata.normalize("NFKC", typed or "").upper().strip())


@dataclass(frozen=True)
class Search:
    receipt_no: str = ""
    operator_id: int | None = None
    before: int | None = None  # the last row of the page before: its id
    limit: int = PAGE_SIZE


@dataclass(frozen=True)
class Found:
    views: list[Row]
    next_before: int | None  # None: this is the last page


async def search(db: Database, criteria: Search) -> Found:
    """Newest first: by time, then by the order they were written."""
    query = (select(data_views, operators.c.display_name.label("operator_name"), operators.c.login)
             .join(operators, operators.c.id == data_views.c.operator_id))
    if receipt_no := typed_receipt_no(criteria.receipt_no):
        query = query.where(data_views.c.receipt_no == receipt_no)
    if criteria.operator_id is not None:
        query = query.where(data_views.c.operator_id == criteria.operator_id)
    if criteria.before is not None:
        cursor_at = select(data_views.c.at).where(data_views.c.id == criteria.before).scalar_subquery()
        query = query.where(tuple_(data_views.c.at, data_views.c.id) < tuple_(cursor_at, criteria.before))
    async with db() as conn:
        rows = list((await conn.execute(
            query.order_by(data_views.c.at.desc(), data_views.c.id.desc()).limit(criteria.limit + 1))).all())
    more = len(rows) > criteria.limit
    return Found(rows[:criteria.limit], rows[criteria.limit - 1].id if more else None)


async def operators_to_choose(db: Database) -> list[Row]:
    """Every operator, for the filter: one who left still has views on record."""
    async with db() as conn:
        return list((await conn.execute(select(operators.c.id, operators.c.display_name, operators.c.login)
                                        .order_by(operators.c.display_name, operators.c.id))).all())


async def purge(db: Database, now: datetime, keep_days: int) -> int:
    """Delete the rows older than `keep_days`, a batch per transaction; returns how many."""
    too_old = select(data_views.c.id).where(data_views.c.at < now - timedelta(days=keep_days)).limit(PURGE_BATCH)
    deleted = 0
    while True:
        async with db.begin() as conn:
            batch = (await conn.execute(delete(data_views).where(data_views.c.id.in_(too_old.scalar_subquery())))).rowcount
        deleted += batch
        if batch < PURGE_BATCH:
            return deleted
