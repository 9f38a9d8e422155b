"""The console's one gate, in front of every route: nothing but the log-in and the health probes
without a session, no write without the session's CSRF token, and no control character in a
path, a query or a form field. A route added later is behind it without asking."""
from urllib.parse import unquote

from fastapi import Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from services.console import errors
from services.console.accounts import has_control_characters
from services.console.sessions import FORM_TYPES, SESSION_COOKIE, CsrfRefused, check_csrf

# the platform's probes: no session and no database behind them
PROBES = {"/healthz", "/readyz", "/metrics"}
# open before log-in: they look the session up (the log-in form's own) and check CSRF themselves
LOG_IN = {("GET", "/login"), ("HEAD", "/login"), ("POST", "/login"), ("POST", "/api/v1/session")}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def guard(request: Request, call_next: RequestResponseEndpoint) -> Response:
    if request.url.path in PROBES:
        return await call_next(request)
    if has_control_characters(request.url.path) or has_control_characters(unquote(request.url.query)):
        return errors.refusal(request, "invalid_characters")
    if request.method not in SAFE_METHODS and (refused := await _form_refusal(request)):
        return errors.refusal(request, refused)
    cookie = request.cookies.get(SESSION_COOKIE)
    request.state.console_session = session = await request.app.state.console_sessions.find(cookie)
    if (request.method, request.url.path) in LOG_IN:
        return await call_next(request)
    if session is None or session.operator is None:
        refused = errors.unauthenticated(request)
        if cookie is not None:  # expired or ended: the browser may forget it
            request.app.state.console_sessions.clear_cookie(refused)
        return refused
    if request.method not in SAFE_METHODS:
        try:
            await check_csrf(request)
        except CsrfRefused:
            return errors.refusal(request, "csrf_failed")
    return await call_next(request)


async def _form_refusal(request: Request) -> str | None:
    """Why a submitted form is refused, if it is: line breaks and tabs are text in a form;
    NUL, escape and the rest are not."""
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return None
    try:
        await request.body()  # kept, so that the route reads the same form after this
        form = await request.form()
    except Exception:  # a malformed multipart body
        return "bad_request"
    if any(isinstance(value, str) and has_control_characters(f"{name}{value}", allow_line_breaks=True)
           for name, value in form.multi_items()):
        return "invalid_characters"
    return None
