"""The queue, the page operators start from (`GET /`): the open tasks due by the end of today in
Japan, the overdue ones marked, and those without a due time; the tasks of later days on their
own tab (`GET /upcoming`). One line per task: due, kind and reason, receipt, consultant, contact,
and who holds it or a button to take it. The summary and the URLs stay on the task page. Each
consultation listed is recorded as seen (data_views.py)."""
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.console import data_views, queue
from services.console.accounts import Operator
from services.console.pages import page, templates
from services.console.sessions import current_operator
from services.console.task_reasons import task_reason_label
from services.console.task_view import is_overdue, phone_label, phone_link
from shared.calendar import WEEKDAYS_JA, to_japan
from shared.db import Database


def short_due(row) -> str:
    """The due time in a queue's line: `11/30(月) 10:00〜10:30`; 指定なし without one."""
    if row.due_starts_at is None:
        return "指定なし"
    starts = to_japan(row.due_starts_at)
    label = f"{starts.month}/{starts.day}({WEEKDAYS_JA[starts.weekday()]}) {starts:%H:%M}"
    if row.due_ends_at is not None and to_japan(row.due_ends_at).date() == starts.date():
        label += f"〜{to_japan(row.due_ends_at):%H:%M}"
    return label


templates.env.globals.update(task_reason_label=task_reason_label, is_overdue=is_overdue, phone_link=phone_link)
templates.env.filters.update(short_due=short_due, phone_label=phone_label, hhmm=lambda moment: f"{to_japan(moment):%H:%M}")


def router(db: Database, clock: Callable[[], datetime]) -> APIRouter:
    web = APIRouter(include_in_schema=False)

    async def queue_page(request: Request, operator: Operator, tab: str, rows: list, now: datetime) -> Response:
        await data_views.record(db, operator, tab, rows, now)
        by_today, later = await queue.counts(db, now)
        return page(request, "tasks.html", {"tasks": rows, "now": now, "tab": tab, "by_today": by_today,
                                            "later": later, "overdue": sum(is_overdue(t, now) for t in rows)})

    @web.get("/", response_class=HTMLResponse)
    async def by_today(request: Request, operator: Operator = Depends(current_operator)) -> Response:
        now = clock()
        return await queue_page(request, operator, "queue", await queue.due_by_today(db, now), now)

    @web.get("/upcoming", response_class=HTMLResponse)
    async def upcoming(request: Request, operator: Operator = Depends(current_operator)) -> Response:
        now = clock()
        return await queue_page(request, operator, "upcoming", await queue.due_later(db, now), now)

    return web
