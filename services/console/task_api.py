"""The console's JSON API for working on tasks: claim and release a task, record a call's
outcome, mark any other task done, read and decide a membership review. Writes carry the
session's X-CSRF-Token header (the guard checks it); refusals are {"code", "detail"} (409 when
another operator or an earlier click got there first). An answer with a consultation's personal
data is recorded as seen (data_views.py) before it goes out."""
import uuid
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, Response

from services.console import call_outcomes, claims, closing, data_views, reviews, tasks
from services.console.accounts import Operator, has_control_characters
from services.console.api_docs import refusals
from services.console.pages import InvalidCharacters
from services.console.refused import ActionRefused
from services.console.review_labels import (
    DECISION_REASONS, NOT_CARRIED, decision_reason_label, reason_label, why_label,
)
from services.console.schemas import DecisionIn, DecisionOut, DoneIn, DoneOut, OutcomeIn, OutcomeOut, ReviewOut, TaskOut
from services.console.sessions import current_operator
from services.console.task_view import task_json
from shared.db import Database
from shared.settings import Settings

REFUSALS = refusals(409)


def decision_json(decided, receipt_no: str) -> dict:
    """A decision (its row, or its event) as DecisionOut."""
    return {"consultation_id": decided.consultation_id, "receipt_no": receipt_no, "decision": decided.decision,
            "reason": decided.reason, "reason_label": decision_reason_label(decided.decision, decided.reason),
            "decided_at": decided.decided_at}


def review_json(view: reviews.ReviewView) -> dict:
    review, task = view.review, view.task
    candidates = review.candidates if review is not None else []
    receipt_no = review.receipt_no if review is not None else task.receipt_no
    return {
        "consultation_id": view.consultation_id, "receipt_no": receipt_no,
        "reason": review.reason if review is not None else None,
        "reason_label": reason_label(review.reason) if review is not None else None,
        "candidates": [{"ref": c["ref"], "name": c["name"], "why": c["why"], "why_label": why_label(c["why"])}
                       for c in candidates],
        "task": task_json(task) if task is not None else None,
        "decision": decision_json(view.decision, receipt_no) if view.decision is not None else None,
        "decision_reasons": DECISION_REASONS, "not_carried": NOT_CARRIED,
    }


def no_note_control_characters(note: str) -> None:
    if has_control_characters(note, allow_line_breaks=True):
        raise InvalidCharacters("note")


def router(db: Database, settings: Settings, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix="/api/v1", responses=REFUSALS)

    async def shown(task, what: str, operator: Operator, response: Response) -> dict:
        await data_views.record(db, operator, what, [task], clock())
        response.headers["Cache-Control"] = "no-store"
        return task_json(task)

    @api.get("/tasks/{task_id}", response_model=TaskOut)
    async def task(task_id: uuid.UUID, response: Response, operator: Operator = Depends(current_operator)) -> dict:
        found = await tasks.find_task(db, task_id)
        if found is None:
            raise ActionRefused("not_found")
        return await shown(found, "api_task", operator, response)

    @api.post("/tasks/{task_id}/claim", response_model=TaskOut)
    async def claim(task_id: uuid.UUID, response: Response, operator: Operator = Depends(current_operator)) -> dict:
        """The task for this operator (200), or 409 when another holds it or it is done."""
        claimed = await claims.claim(db, task_id, operator, clock(), settings.console_claim_minutes)
        return await shown(claimed, "api_claim", operator, response)

    @api.post("/tasks/{task_id}/release", response_model=TaskOut)
    async def release(task_id: uuid.UUID, response: Response,
                      operator: Operator = Depends(current_operator)) -> dict:
        """Back to the queue: by its holder, or by a supervisor."""
        return await shown(await claims.release(db, task_id, operator), "api_release", operator, response)

    @api.post("/tasks/{task_id}/outcome", response_model=OutcomeOut)
    async def outcome(task_id: uuid.UUID, body: OutcomeIn, response: Response,
                      operator: Operator = Depends(current_operator)) -> dict:
        """A call task's outcome, by the operator holding it; the task closes. Once: 409 after."""
        no_note_control_characters(body.note)
        event = await call_outcomes.record_outcome(db, task_id, operator, body.outcome, body.note, clock())
        response.headers["Cache-Control"] = "no-store"
        return {"task_id": task_id} | event.model_dump(include={
            "receipt_no", "booking_id", "attempt", "outcome", "note_length", "recorded_at"})

    @api.post("/tasks/{task_id}/done", response_model=DoneOut)
    async def done(task_id: uuid.UUID, body: DoneIn, response: Response,
                   operator: Operator = Depends(current_operator)) -> dict:
        """A task other than a call or a review (email, decline, unreachable, unschedulable, bounced)
        done, with what was done: by the operator holding it; the task closes. Once: 409 after."""
        no_note_control_characters(body.note)
        closed = await closing.mark_done(db, task_id, operator, body.note, clock())
        response.headers["Cache-Control"] = "no-store"
        return vars(closed)

    @api.get("/reviews/{consultation_id}", response_model=ReviewOut)
    async def review(consultation_id: uuid.UUID, response: Response,
                     operator: Operator = Depends(current_operator)) -> dict:
        view = await reviews.review_view(db, consultation_id)
        if view is None:
            raise ActionRefused("not_found")
        if view.task is not None:  # the consultant's name and contact come with the task
            await data_views.record(db, operator, "api_review", [view.task], clock())
        response.headers["Cache-Control"] = "no-store"
        return review_json(view)

    @api.post("/reviews/{consultation_id}/decision", response_model=DecisionOut)
    async def decide(consultation_id: uuid.UUID, body: DecisionIn, response: Response,
                     operator: Operator = Depends(current_operator)) -> dict:
        """By the operator holding the review task; the task closes. Once: 409 after."""
        no_note_control_characters(body.note)
        event = await reviews.decide(db, consultation_id, operator, body.decision, body.reason, body.note, clock())
        response.headers["Cache-Control"] = "no-store"
        return decision_json(event, event.receipt_no)

    return api
