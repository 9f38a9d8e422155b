"""The operators' pages for working on one task (no JavaScript): see it, claim it, release it,
record a call's outcome, decide a membership review, and mark any other task done. Every form
posts back here with the session's CSRF token and ends in a redirect (303) to the page that shows
what changed; a refusal is a Japanese error page (409 when another operator or an earlier click
got there first). A page showing a consultant's data is recorded as seen (data_views.py)."""
import uuid
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import aliased

from services.console import call_outcomes, claims, closing, data_views, reviews, tasks
from services.console.accounts import Operator, has_control_characters
from services.console.call_outcomes import MAX_NOTE, OUTCOME_LABELS
from services.console.emails_sent import email_label
from services.console.notes import notes_of, outcome_of
from services.console.orm import call_outcomes as call_outcomes_table
from services.console.orm import emails_sent, operators, review_decisions
from services.console.orm import tasks as tasks_table
from services.console.pages import InvalidCharacters, page, templates, text_field
from services.console.refused import ActionRefused
from services.console.review_labels import (
    DECISION_REASONS, DECISIONS, NOT_CARRIED, decision_reason_label, reason_label, why_label,
)
from services.console.sessions import current_operator
from services.console.task_reasons import task_reason_label
from services.console.task_view import holder_label, japan_time, phone_label, phone_link
from shared.db import Database
from shared.settings import Settings

# the consultant's role, as the flyer names who may consult
ROLE_LABELS = {"member": "会員（医師）", "medical_staff": "会員が開設・管理する医療機関の職員",
               "care_staff": "会員が開設・管理する介護施設の職員"}
PREFERRED_TIME_LABELS = {"morning": "午前", "afternoon": "午後", "any": "いつでも"}
# the platforms intake recognises in a post's URL (services/intake/post_urls.PLATFORMS, and
# "other"), as operators read them; tests/unit/test_post_urls.py keeps the two in step
PLATFORM_LABELS = {
    "google_maps": "Googleマップ（Googleビジネスプロフィール）",
    "x": "X（旧Twitter）",
    "instagram": "Instagram",
    "facebook": "Facebook",
    "youtube": "YouTube",
    "tiktok": "TikTok",
    "line": "LINE",
    "5ch": "5ちゃんねる（旧2ちゃんねる）",
    "bakusai": "爆サイ.com",
    "medical_review": "医療機関の口コミサイト",
    "other": "その他のサイト",
}
NOT_RECORDED = "（記録なし）"


def platform_label(code: str | None) -> str:
    return PLATFORM_LABELS.get(code or "other", f"その他（{code}）")


async def history_of(db: Database, consultation_id: uuid.UUID) -> dict:
    """What the console holds for the consultation: its tasks (who closed them and when), call
    outcomes and review decisions, each with the operator's name, and the e-mails the notifier
    sent, oldest first."""
    closer = aliased(operators)
    async with db() as conn:
        task_rows = (await conn.execute(
            select(tasks_table.c.task_id, tasks_table.c.kind, tasks_table.c.attempt, tasks_table.c.status,
                   tasks_table.c.due_starts_at, tasks_table.c.due_ends_at, tasks_table.c.issued_at,
                   tasks_table.c.closed_at, closer.c.display_name.label("closer_name"))
            .outerjoin(closer, closer.c.id == tasks_table.c.closed_by)
            .where(tasks_table.c.consultation_id == consultation_id)
            .order_by(tasks_table.c.issued_at, tasks_table.c.task_id))).all()
        outcome_rows = (await conn.execute(
            select(call_outcomes_table.c.attempt, call_outcomes_table.c.outcome, call_outcomes_table.c.recorded_at,
                   operators.c.display_name.label("operator_name"))
            .join(operators, operators.c.id == call_outcomes_table.c.operator_id)
            .where(call_outcomes_table.c.consultation_id == consultation_id)
            .order_by(call_outcomes_table.c.recorded_at))).all()
        decision_rows = (await conn.execute(
            select(review_decisions.c.decision, review_decisions.c.reason, review_decisions.c.decided_at,
                   operators.c.display_name.label("operator_name"))
            .join(operators, operators.c.id == review_decisions.c.operator_id)
            .where(review_decisions.c.consultation_id == consultation_id)
            .order_by(review_decisions.c.decided_at))).all()
        email_rows = (await conn.execute(
            select(emails_sent.c.kind, emails_sent.c.attempt, emails_sent.c.sent_at)
            .where(emails_sent.c.consultation_id == consultation_id)
            .order_by(emails_sent.c.sent_at, emails_sent.c.kind, emails_sent.c.attempt))).all()
    return {"tasks": task_rows, "outcomes": outcome_rows, "decisions": decision_rows, "emails": email_rows}


templates.env.globals.update(
    roles=ROLE_LABELS, preferred_times=PREFERRED_TIME_LABELS, platform_label=platform_label,
    not_recorded=NOT_RECORDED,
    holder_label=holder_label, outcome_labels=OUTCOME_LABELS, reason_label=reason_label, why_label=why_label,
    decisions=DECISIONS, decision_reasons=DECISION_REASONS, decision_reason_label=decision_reason_label,
    not_carried=NOT_CARRIED, max_note=MAX_NOTE, done_means=closing.DONE_MEANS, phone_link=phone_link,
    task_reason_label=task_reason_label, email_label=email_label)
templates.env.filters.update(japan_time=japan_time, phone_label=phone_label)


def note_field(form) -> str:
    value = form.get("note")
    if not isinstance(value, str):
        return ""
    if has_control_characters(value, allow_line_breaks=True):
        raise InvalidCharacters("note")
    if len(value.strip()) > MAX_NOTE:
        raise ActionRefused("invalid_request", f"メモは{MAX_NOTE:,}文字以内で入力してください。")
    return value


def router(db: Database, settings: Settings, clock: Callable[[], datetime]) -> APIRouter:
    web = APIRouter(include_in_schema=False)

    async def task_page(request: Request, operator: Operator, task, review: reviews.ReviewView | None,
                        what: str) -> Response:
        consultation_id = task.consultation_id if task is not None else review.consultation_id
        now = clock()
        if task is not None:  # a review whose task has not arrived shows no consultant's data
            await data_views.record(db, operator, what, [task], now)
        return page(request, "task.html", {
            "task": task, "review": review, "now": now, "notes": await notes_of(db, consultation_id),
            "history": await history_of(db, consultation_id),
            "mine": task is not None and task.claimed_by == operator.id,
            "outcome": await outcome_of(db, task.task_id) if task is not None and task.kind == "call" else None,
        })

    @web.get("/tasks/{task_id}", response_class=HTMLResponse)
    async def task_detail(task_id: uuid.UUID, request: Request,
                          operator: Operator = Depends(current_operator)) -> Response:
        task = await tasks.find_task(db, task_id)
        if task is None:
            raise ActionRefused("not_found")
        review = await reviews.review_view(db, task.consultation_id) if task.kind == "review" else None
        return await task_page(request, operator, task, review, "task")

    @web.get("/reviews/{consultation_id}", response_class=HTMLResponse)
    async def review_detail(consultation_id: uuid.UUID, request: Request,
                            operator: Operator = Depends(current_operator)) -> Response:
        review = await reviews.review_view(db, consultation_id)
        if review is None:
            raise ActionRefused("not_found")
        return await task_page(request, operator, review.task, review, "review")

    @web.post("/tasks/{task_id}/claim")
    async def claim(task_id: uuid.UUID, operator: Operator = Depends(current_operator)) -> Response:
        await claims.claim(db, task_id, operator, clock(), settings.console_claim_minutes)
        return RedirectResponse(f"/tasks/{task_id}", status_code=303)

    @web.post("/tasks/{task_id}/release")
    async def release(task_id: uuid.UUID, operator: Operator = Depends(current_operator)) -> Response:
        await claims.release(db, task_id, operator)
        return RedirectResponse("/", status_code=303)

    @web.post("/tasks/{task_id}/outcome")
    async def outcome(task_id: uuid.UUID, request: Request, operator: Operator = Depends(current_operator)) -> Response:
        form = await request.form()
        what = text_field(form, "outcome")
        if what not in OUTCOME_LABELS:
            raise ActionRefused("invalid_request", "通話の結果を選んでください。")
        await call_outcomes.record_outcome(db, task_id, operator, what, note_field(form), clock())
        return RedirectResponse(f"/tasks/{task_id}", status_code=303)

    @web.post("/tasks/{task_id}/done")
    async def done(task_id: uuid.UUID, request: Request, operator: Operator = Depends(current_operator)) -> Response:
        await closing.mark_done(db, task_id, operator, note_field(await request.form()), clock())
        return RedirectResponse(f"/tasks/{task_id}", status_code=303)

    @web.post("/reviews/{consultation_id}/decision")
    async def decide(consultation_id: uuid.UUID, request: Request,
                     operator: Operator = Depends(current_operator)) -> Response:
        form = await request.form()
        decision, _, reason = text_field(form, "decision").partition(":")  # "confirm:member_no_typo"
        await reviews.decide(db, consultation_id, operator, decision, reason, note_field(form), clock())
        return RedirectResponse(f"/reviews/{consultation_id}", status_code=303)

    return web
