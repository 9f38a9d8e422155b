"""The operators' web console: log in and out, and the open tasks as a page and as JSON."""
import logging
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from services.console import accounts, tasks
from shared.calendar import WEEKDAYS_JA, to_japan
from shared.db import Database
from shared.settings import Settings

log = logging.getLogger("payhara.console")

SESSION_COOKIE = "payhara_console"
SESSION_MAX_AGE_S = 8 * 60 * 60  # one working day
LOGIN_REQUIRED = {"code": "login_required", "detail": "ログインしてください"}
LOGIN_REFUSED = "ログインIDまたはパスワードが正しくありません。"  # the same whether or not the login exists
MAX_FIELD_CHARS = 1024
KIND_LABELS = {"call": "電話連絡", "email": "メール連絡", "review": "会員確認", "decline": "対象外のご連絡",
               "unreachable": "電話がつながらない", "unschedulable": "日程を調整できない"}
CATEGORY_LABELS = {"in_person": "院内・施設内でのハラスメント", "online": "インターネット上の悪質な投稿", "both": "その両方"}
CONTACT_LABELS = {"phone": "電話", "email": "メール"}
# Pages carry personal data: never cached, never framed, no scripts at all (a second line of
# defence behind escaping), and no Referer, so the sites of the reported posts never learn
# the console's address when an operator opens a URL.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


def japan_time(moment: datetime) -> str:
    local = to_japan(moment)
    return f"{local:%Y/%m/%d}({WEEKDAYS_JA[local.weekday()]}) {local:%H:%M}"


def due_label(starts: datetime | None, ends: datetime | None) -> str:
    """When the task is due, on the Japan wall clock: `2026/11/25(水) 10:00〜10:30`."""
    if starts is None:
        return "指定なし"
    if ends is None:
        return japan_time(starts)
    same_day = to_japan(starts).date() == to_japan(ends).date()
    return f"{japan_time(starts)}〜{to_japan(ends):%H:%M}" if same_day else f"{japan_time(starts)}〜{japan_time(ends)}"


def is_web_link(url: str) -> bool:
    """Only http(s) addresses become links; anything else (javascript:, data:) stays text."""
    return url.lower().startswith(("http://", "https://"))


def task_json(row) -> dict:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None
    return {
        "task_id": str(row.task_id), "consultation_id": str(row.consultation_id), "receipt_no": row.receipt_no,
        "kind": row.kind, "kind_label": KIND_LABELS.get(row.kind, row.kind), "reason": row.reason,
        "due_starts_at": iso(row.due_starts_at), "due_ends_at": iso(row.due_ends_at),
        "consultant_name": row.consultant_name,
        "contact": {"method": row.contact_method, "phone": row.phone, "email": row.email},
        "category": row.category, "summary": row.summary, "urls": list(row.urls),
        "issued_at": iso(row.issued_at), "status": row.status,
    }


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(kinds=KIND_LABELS, categories=CATEGORY_LABELS, contacts=CONTACT_LABELS)
templates.env.filters.update(due_label=lambda t: due_label(t.due_starts_at, t.due_ends_at), is_web_link=is_web_link)


def add_sessions(app: FastAPI, settings: Settings) -> None:
    """Signed-cookie sessions holding only the operator id; the account is re-read per request."""
    app.add_middleware(
        SessionMiddleware, secret_key=settings.console_secret.get_secret_value(), session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S, same_site="strict", https_only=settings.env == "production",
    )


def page(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code, headers=PAGE_HEADERS)


def field(form, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


def router(sessions: Database) -> APIRouter:
    web = APIRouter()

    async def current_operator(request: Request) -> accounts.Operator | None:
        operator_id = request.session.get("operator_id")
        if not isinstance(operator_id, int):
            return None
        operator = await accounts.operator_by_id(sessions, operator_id)
        if operator is None:  # disabled or removed since log-in
            request.session.clear()
        return operator

    @web.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        if await current_operator(request) is not None:
            return RedirectResponse("/", status_code=303)
        return page(request, "login.html", {"login": "", "error": None})

    @web.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await request.form()
        login_id = field(form, "login")
        operator = await accounts.authenticate(sessions, login_id, field(form, "password"))
        if operator is None:
            log.warning("console log-in refused")  # no login id: it may be a mistyped password
            return page(request, "login.html", {"login": login_id, "error": LOGIN_REFUSED}, status_code=401)
        request.session.clear()
        request.session["operator_id"] = operator.id
        log.info("operator %s logged in", operator.id)
        return RedirectResponse("/", status_code=303)

    @web.post("/logout")
    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @web.get("/", response_class=HTMLResponse)
    async def task_list(request: Request) -> Response:
        operator = await current_operator(request)
        if operator is None:
            return RedirectResponse("/login", status_code=303)
        rows = await tasks.open_tasks(sessions)
        return page(request, "tasks.html", {"operator": operator, "tasks": rows})

    @web.get("/api/v1/tasks")
    async def task_list_json(request: Request) -> Response:
        if await current_operator(request) is None:
            return JSONResponse(status_code=401, content=LOGIN_REQUIRED, headers={"Cache-Control": "no-store"})
        rows = await tasks.open_tasks(sessions)
        return JSONResponse([task_json(row) for row in rows], headers={"Cache-Control": "no-store"})

    return web
