"""The console's JSON API: log in (`POST /api/v1/session`), log out (`DELETE /api/v1/session`,
with the X-CSRF-Token header) and the open tasks (`GET /api/v1/tasks`); working on a task:
task_api.py."""
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from services.console import errors, tasks
from services.console.accounts import MAX_TEXT_CHARS, Operator, has_control_characters
from services.console.login import LoggedIn
from services.console.schemas import TaskOut
from services.console.sessions import CSRF_HEADER, address_of, current_operator, log_in_allowed, session_of
from services.console.task_view import task_json
from shared.db import Database

NO_STORE = {"Cache-Control": "no-store"}


class Credentials(BaseModel):
    login: str = Field(max_length=MAX_TEXT_CHARS)
    password: str = Field(max_length=MAX_TEXT_CHARS)


def router(db: Database) -> APIRouter:
    api = APIRouter(prefix="/api/v1")

    @api.post("/session")
    async def log_in(request: Request) -> Response:
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

    @api.delete("/session", status_code=204)
    async def log_out(request: Request) -> Response:
        await request.app.state.console_logins.log_out(session_of(request))
        response = Response(status_code=204, headers=NO_STORE)
        request.app.state.console_sessions.clear_cookie(response)
        return response

    @api.get("/tasks", response_model=list[TaskOut])
    async def task_list(operator: Operator = Depends(current_operator)) -> Response:
        rows = await tasks.open_tasks(db)
        return JSONResponse([task_json(row) for row in rows], headers=NO_STORE)

    return api
