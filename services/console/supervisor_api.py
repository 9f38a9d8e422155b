"""The supervisors' figures as JSON (`GET /api/v1/supervisor`): the same as the page
(supervisor_pages.py). Supervisors only (403). No personal data."""
from collections.abc import Callable
from datetime import date, datetime

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from services.console.accounts import Operator
from services.console.api_docs import refusals
from services.console.schemas import Answer
from services.console.sessions import require_supervisor
from services.console.supervisor import desk_figures
from services.console.task_view import KIND_LABELS
from shared.db import Database
from shared.settings import Settings


class BacklogRowOut(Answer):
    label: str = Field(description="期限超過, a Japan day (今日 12/2(水)), それ以降, 期日なし")
    day: date | None = Field(description="the Japan due day; null for the lumped rows")
    overdue: bool
    tasks: int
    by_kind: dict[str, int]


class PromiseOut(Answer):
    within: int = Field(description="first contacted on or before the promised day")
    late: int = Field(description="first contacted after the promised day")
    late_waiting: int = Field(description="not contacted yet, the promised day past (late)")
    due_today: int = Field(description="not contacted yet, promised for today (left out of the share)")
    share_percent: float | None = Field(description="within / (within + late + late_waiting); null without any")
    days: int = Field(description="consultations whose promised day is in the last `days` Japan days")


class OperatorWorkOut(Answer):
    display_name: str
    claimed_today: int
    claimed_week: int
    closed_today: int
    closed_week: int


class OldestOut(Answer):
    receipt_no: str
    kind: str
    kind_label: str
    issued_at: datetime
    age_minutes: int


class SupervisorOut(Answer):
    at: datetime
    open_tasks: int
    backlog: list[BacklogRowOut]
    by_kind: dict[str, int]
    promise: PromiseOut
    attempts: dict[str, int] = Field(description='consultations by calls so far ("1", "2", "3+"), first call '
                                                 'in the last 30 days')
    work: list[OperatorWorkOut] = Field(description="claimed and closed tasks: today and the last 7 days")
    dead_letters: int | None = Field(description="messages in the desk's DLQs; null when the broker cannot be asked")
    oldest_unclaimed: OldestOut | None


def router(db: Database, settings: Settings, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix="/api/v1")

    @api.get("/supervisor", response_model=SupervisorOut, responses=refusals())
    async def supervisor(response: Response, _: Operator = Depends(require_supervisor)) -> dict:
        """The desk's figures for supervisors: backlog, promise share, attempts, work, dead letters."""
        now = clock()
        f = await desk_figures(db, settings, now)
        response.headers["Cache-Control"] = "no-store"
        oldest = f.oldest and {
            "receipt_no": f.oldest.receipt_no, "kind": f.oldest.kind, "issued_at": f.oldest.issued_at,
            "kind_label": KIND_LABELS.get(f.oldest.kind, f.oldest.kind),
            "age_minutes": max(int((now - f.oldest.issued_at).total_seconds() // 60), 0)}
        return {
            "at": now, "open_tasks": f.open_tasks, "by_kind": f.by_kind,
            "backlog": [{"label": r.label, "day": r.day, "overdue": r.overdue, "tasks": r.tasks, "by_kind": r.by_kind}
                        for r in f.backlog],
            "promise": {**vars(f.promise), "share_percent": f.share, "days": 30},
            "attempts": {"1": f.attempts[1], "2": f.attempts[2], "3+": f.attempts[3]},
            "work": [vars(w) for w in f.work], "dead_letters": f.dead_letters, "oldest_unclaimed": oldest,
        }

    return api
