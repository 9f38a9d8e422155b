"""The console's JSON API: log in (`POST /api/v1/session`), log out (`DELETE /api/v1/session`,
with the X-CSRF-Token header) and the open tasks (`GET /api/v1/tasks`, all of them, or those due
by today or later, as the queue shows them); working on a task: task_api.py; the audit:
audit_api.py. The document: api_docs.py."""
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from services.console import data_views, errors, queue, tasks
from services.console.accounts import Operator, has_control_characters
from services.console.api_docs import SESSION_BODY, refusals
from services.console.login import LoggedIn
from services.console.schemas import Credentials, SessionOut, TaskOut, TaskRef
from services.console.sessions import CSRF_HEADER, address_of, current_operator, log_in_allowed, session_of
from services.console.task_view import task_json
from shared.db import Database

NO_STORE = {"Cache-Control": "no-store"}
LOG_IN_REFUSALS = refusals(415, 429)
LOG_IN_REFUSALS[401]["description"] = "Wrong login or password (alike whether the login exists)"
LOG_IN_REFUSALS[403]["description"] = "From another site, or on a logged-in session without its X-CSRF-Token"
LOG_IN_REFUSALS[429]["headers"] = {"Retry-After": {"description": "Seconds until the login may be tried again",
                                                   "required": True, "schema": {"type": "integer", "minimum": 1}}}


def router(db: Database, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix="/api/v1")

    @api.post("/session", response_model=SessionOut, openapi_extra=SESSION_BODY,
              responses=LOG_IN_REFUSALS)
    async def log_in(request: Request) -> Response:
        """Log in: the session's cookie, and the CSRF token for the writes that follow."""
        # JSON only: another site's form cannot send it, nor its script without our CORS consent
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return errors.refusal(request, "unsupported_media_type")
        try:
            credentials = Credentials.model_validate(await request.json())
        except (ValueError, ValidationError):  # not JSON, or not {"login": "...", "password": "..."}
            return errors.refusal(request, "invalid_request",
                                  "ログインIDとパスワードを {\"login\": \"...\", \"password\": \"...\"} で送ってください。")
        if has_control_characters(credentials.login) or has_control_characters(credentials.password):
            return errors.refusal(request, "invalid_characters")
        if not log_in_allowed(request, request.headers.get(CSRF_HEADER)):
            return errors.refusal(request, "csrf_failed")
        outcome = await request.app.state.console_logins.log_in(
            credentials.login, credentials.password, address_of(request), replacing=session_of(request))
        if not isinstance(outcome, LoggedIn):
            if outcome.locked is not None:
                return errors.refusal(request, "login_locked", outcome.message,
                                      headers={"Retry-After": str(outcome.locked.retry_after_s)})
            return errors.refusal(request, "login_refused")
        response = JSONResponse({"csrf_token": outcome.session.csrf_token, "operator": outcome.operator.as_json()},
                                headers=NO_STORE)
        request.app.state.console_sessions.set_cookie(response, outcome.token)
        return response

    @api.delete("/session", status_code=204, responses=refusals())
    async def log_out(request: Request) -> Response:
        """Log out: the session ends on the server."""
        await request.app.state.console_logins.log_out(session_of(request))
        response = Response(status_code=204, headers=NO_STORE)
        request.app.state.console_sessions.clear_cookie(response)
        return response

    @api.get("/tasks", response_model=list[TaskOut] | list[TaskRef], responses=refusals())
    async def task_list(due: Literal["today", "later"] | None = Query(
                            None, description="today: due by the end of today in Japan, overdue or without a due "
                                              "time (the queue); later: due on later days; none: every open task"),
                        fields: Literal["all", "reference"] = Query(
                            "all", description="reference: without the consultant's personal data (not recorded "
                                               "as a view of it)"),
                        operator: Operator = Depends(current_operator)) -> Response:
        """Open tasks, the most urgent first; each consultation listed with its personal data is
        recorded as seen."""
        now = clock()
        rows = (await queue.due_by_today(db, now) if due == "today" else await queue.due_later(db, now)
                if due == "later" else await tasks.open_tasks(db))
        if fields == "reference":
            return JSONResponse([TaskRef.model_validate(row, from_attributes=True).model_dump(mode="json")
                                 for row in rows], headers=NO_STORE)
        await data_views.record(db, operator, "api_tasks", rows, now)
        return JSONResponse([task_json(row) for row in rows], headers=NO_STORE)

    return api
