"""The operators' web console: log in and out; `install` puts the console (its gate, sessions,
error pages, pages and JSON API) on an app: the queue (queue_pages.py), the task pages
(task_pages.py), the phone line (phone_pages.py), the supervisors' audit (audit_pages.py) and figures
(supervisor_pages.py), and the JSON API (api.py, task_api.py, phone_api.py, audit_api.py,
supervisor_api.py; documented by api_docs.py)."""
from collections.abc import Callable
from datetime import datetime, timezone

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import (
    api, api_docs, audit_api, audit_pages, errors, phone_api, phone_pages, queue_pages, supervisor_api,
    supervisor_pages, task_api, task_pages,
)
from services.console.guard import guard
from services.console.lockout import Lockout
from services.console.login import LoggedIn, LogIns
from services.console.pages import page, templates, text_field
from services.console.sessions import CSRF_FIELD, SessionStore, address_of, log_in_allowed, session_of
from services.console.task_view import CATEGORY_LABELS, CONTACT_LABELS, KIND_LABELS, due_label, is_web_link
from shared.db import Database
from shared.settings import Settings

LOGIN_REFUSED = errors.REFUSALS["login_refused"][1]
LOGIN_EXPIRED = "ログイン画面の有効期限が切れました。もう一度ログインしてください。"

templates.env.globals.update(kinds=KIND_LABELS, categories=CATEGORY_LABELS, contacts=CONTACT_LABELS)
templates.env.filters.update(due_label=lambda t: due_label(t.due_starts_at, t.due_ends_at), is_web_link=is_web_link)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def install(app: FastAPI, db: Database, settings: Settings, clock: Callable[[], datetime] = utc_now) -> LogIns:
    """The console on `app`; returns its log-ins (whose purge runs alongside the service)."""
    store = SessionStore(db, settings, clock)
    app.state.console_sessions = store
    app.state.console_logins = logins = LogIns(db, store, Lockout(db, settings, clock))
    app.middleware("http")(guard)
    errors.install(app)
    api_docs.install(app)
    app.include_router(router())
    app.include_router(queue_pages.router(db, clock))
    app.include_router(task_pages.router(db, settings, clock))
    app.include_router(phone_pages.router(db, settings, clock))
    app.include_router(audit_pages.router(db))
    app.include_router(supervisor_pages.router(db, settings, clock))
    app.include_router(api.router(db, clock))
    app.include_router(task_api.router(db, settings, clock))
    app.include_router(phone_api.router(db, settings, clock))
    app.include_router(audit_api.router(db))
    app.include_router(supervisor_api.router(db, settings, clock))
    return logins


def router() -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        session = session_of(request)
        if session is not None and session.operator is not None:
            return RedirectResponse("/", status_code=303)
        return await _login_page(request, "", None, 200)

    @web.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await request.form()
        login_id, password = text_field(form, "login"), text_field(form, "password")
        if not log_in_allowed(request, form.get(CSRF_FIELD)):
            return await _login_page(request, login_id, LOGIN_EXPIRED, 403)
        outcome = await request.app.state.console_logins.log_in(
            login_id, password, address_of(request), replacing=session_of(request))
        if not isinstance(outcome, LoggedIn):
            if outcome.locked is not None:
                return await _login_page(request, login_id, outcome.message, 429,
                                         {"Retry-After": str(outcome.locked.retry_after_s)})
            return await _login_page(request, login_id, LOGIN_REFUSED, 401)
        response = RedirectResponse("/", status_code=303)
        request.app.state.console_sessions.set_cookie(response, outcome.token)
        return response

    @web.post("/logout")
    async def logout(request: Request) -> Response:
        await request.app.state.console_logins.log_out(session_of(request))
        response = RedirectResponse("/login", status_code=303)
        request.app.state.console_sessions.clear_cookie(response)
        return response

    return web


async def _login_page(request: Request, login_id: str, error: str | None, status: int,
                      headers: dict | None = None) -> Response:
    """The log-in form, on the log-in form's own session: a browser that has none (or only an
    expired one) gets one, so that its next post carries a token."""
    token = None
    if session_of(request) is None and status in (200, 403):
        token, request.state.console_session = await request.app.state.console_sessions.start(
            None, address_of(request))
    response = page(request, "login.html", {"login": login_id, "error": error}, status, headers)
    if token is not None:
        request.app.state.console_sessions.set_cookie(response, token)
    return response
