"""The supervisors' view (`GET /supervisor`): the backlog by due day as a bar chart (inline SVG,
with a table of the same numbers), the share of consultations first contacted within the promise,
call attempts, each operator's work, the dead letters and the oldest unclaimed task. An operator
gets 403. Receipt numbers and operator names only: nothing is recorded in data_views."""
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.console.accounts import Operator
from services.console.desk_rules import age_label
from services.console.pages import page
from services.console.sessions import require_supervisor
from services.console.supervisor import desk_figures
from shared.db import Database
from shared.settings import Settings

CHART_BAR_X, CHART_BAR_WIDTH, CHART_ROW = 190, 520, 30  # the chart's geometry in SVG units


def chart(rows: list) -> dict:
    """Each bar's width (the longest bar is full width; a non-empty one at least visible)."""
    most = max((row.tasks for row in rows), default=0)
    widths = [0 if not row.tasks else max(round(CHART_BAR_WIDTH * row.tasks / most), 3) for row in rows]
    summary = "、".join(f"{row.label} {row.tasks}件" for row in rows)
    return {"widths": widths, "height": CHART_ROW * len(rows) + 10, "x": CHART_BAR_X, "row": CHART_ROW,
            "label": f"期日別の未完了タスク数: {summary}"}


def router(db: Database, settings: Settings, clock: Callable[[], datetime]) -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/supervisor", response_class=HTMLResponse)
    async def supervisor(request: Request, _: Operator = Depends(require_supervisor)) -> Response:
        now = clock()
        found = await desk_figures(db, settings, now)
        oldest_age = age_label(now - found.oldest.issued_at) if found.oldest else None
        return page(request, "supervisor.html", {"f": found, "chart": chart(found.backlog), "oldest_age": oldest_age})

    return web
