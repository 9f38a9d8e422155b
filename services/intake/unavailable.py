"""What intake answers when its database cannot be reached or answer in time: 503 with
Retry-After and a machine code (JSON API), or a Japanese page that says nothing was recorded and
how to reach the desk by phone. Never a bare 500, and never a receipt that was not committed:
the receipt is shown only after the commit (consultations.submit).

Any other unexpected error is a 500 with a code too; its type is logged, never its text (it can
carry the personal data being written)."""
import logging
import time

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.templating import Jinja2Templates

from shared.failures import DependencyDown, is_infrastructure

log = logging.getLogger("payhara.intake")
RETRY_AFTER_S = 10
UNAVAILABLE = {"code": "temporarily_unavailable",
               "detail": "ただいま受付を記録できません。内容は記録されていません。しばらくしてからもう一度お試しください。"}
INTERNAL = {"code": "internal_error",
            "detail": "申し訳ありません。処理できませんでした。内容は記録されていません。窓口までお電話でご連絡ください。"}


class _Throttled:
    """One warning per `every_s` during an outage, with how many requests it answered meanwhile."""

    def __init__(self, every_s: float = 10.0):
        self.every_s, self.last, self.suppressed = every_s, 0.0, 0

    def warn(self, error: BaseException) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            self.suppressed += 1
            return
        log.warning("database unavailable (%s): answering 503; %d more such answers since the last report",
                    type(error).__name__, self.suppressed)
        self.last, self.suppressed = now, 0


throttled = _Throttled()


def unavailable_headers() -> dict:
    return {"Retry-After": str(RETRY_AFTER_S)}


def install(app: FastAPI, templates: Jinja2Templates) -> None:
    async def answer(request: Request, error: Exception):
        wants_json = request.url.path.startswith("/api/")
        if is_infrastructure(error):
            throttled.warn(error)
            status, body, headers = 503, UNAVAILABLE, unavailable_headers()
        else:
            # the route's template, not the path: a path can carry whatever the consultant typed
            route = getattr(request.scope.get("route"), "path", "(no route)")
            log.error("request %s %s failed: %s", request.method, route, type(error).__name__)
            status, body, headers = 500, INTERNAL, {}
        if wants_json:
            return JSONResponse(status_code=status, content=body, headers=headers)
        looking_up = request.url.path.startswith("/status")
        return templates.TemplateResponse(request, "unavailable.html",
                                          {"problem": body["code"], "looking_up": looking_up},
                                          status_code=status, headers=headers)

    for error_type in (sqlalchemy.exc.SQLAlchemyError, OSError, TimeoutError, DependencyDown):
        app.add_exception_handler(error_type, answer)
