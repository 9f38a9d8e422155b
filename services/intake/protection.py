"""What stands between the network and intake's routes: security headers on every answer, the
media types a submission may use, bodies refused while they are read (not after), a limit of
submissions and status look-ups per client address, and an answer in Japanese with a machine
code for every refusal and failure (JSON under /api/, a page otherwise). Nothing here logs what a
request carried: a failure is logged by its type, its route's template and where it happened."""
import logging
import math
import time
import traceback

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from limits import parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from python_multipart.multipart import parse_options_header
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from services.intake import api, unavailable
from services.intake.web import FormGuard, templates, typed_values
from shared.prefectures import PREFECTURES
from shared.settings import Settings

log = logging.getLogger("payhara.intake")
API_MAX_BYTES, PAGE_MAX_BYTES = api.MAX_BODY_BYTES, 128 * 1024  # a full form, urlencoded, is ~45 KB

# pages without any script, forms that post only here, never inside another site's frame
CSP = ("default-src 'self'; script-src 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
# same-origin rather than no-referrer: nothing leaves the desk, and a form post keeps its Origin
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
                    "referrer-policy": "same-origin", "x-frame-options": "DENY"}

JSON_TYPES, FORM_TYPES = {b"application/json"}, {b"application/x-www-form-urlencoded", b"multipart/form-data"}
MEDIA_TYPES = {("POST", "/api/v1/consultations"): JSON_TYPES, ("POST", "/consultations"): FORM_TYPES,
               ("POST", "/status"): FORM_TYPES}

# machine code -> (page title, what a person reads, also the JSON detail unless JSON_DETAILS has one)
TEXTS = {
    "bad_request": ("送信内容を読み取れませんでした", "送信内容の形式が正しくないため、処理できませんでした。内容は記録されていません。"),
    "not_found": ("ページが見つかりません", "お探しのページは見つかりませんでした。アドレスをご確認ください。"),
    "method_not_allowed": ("この操作はできません", "このページではその操作はできません。"),
    "too_large": ("送信内容が大きすぎます", "送信内容が大きすぎます（上限 {kb}KB）。内容は記録されていません。"
                  "ブラウザの「戻る」で入力画面に戻り、ご相談の内容を短くしてから送信してください。"),
    "unsupported_media_type": ("送信の形式が正しくありません", "この形式の送信は受け付けていません。内容は記録されていません。"
                               "相談フォームから送信してください。"),
    "rate_limited": ("しばらくしてからお試しください", "短い時間に続けて送信されたため、一時的に受け付けを止めています。"
                     "この送信は記録されていません。{minutes}分ほどおいてから、もう一度お試しください。"),
    "look_ups_limited": ("しばらくしてからお試しください", "短い時間に続けて確認されたため、一時的に確認を止めています。"
                         "ご相談の記録には影響ありません。{minutes}分ほどおいてから、もう一度お試しください。"),
    "internal_error": ("処理できませんでした", unavailable.INTERNAL["detail"]),
}
JSON_DETAILS = {"too_large": "送信内容が大きすぎます（上限 {kb}KB）",
                "unsupported_media_type": "Content-Type は application/json（文字コード UTF-8）で送信してください"}
PAGE = templates.env.from_string("""{% extends "base.html" %}{% block title %}{{ title }}{% endblock %}
{% block body %}<h1>{{ title }}</h1>
<div class="error-summary" role="alert" data-code="{{ code }}"><p>{{ text }}</p></div>
{% include "desk_phone.html" %}
<p><a href="/">相談フォームへ</a>　<a href="/status">受付状況の確認へ</a></p>{% endblock %}""")
# over the limit, the web form comes back as it was typed, with why it was not sent
FORM_AGAIN = templates.env.from_string("""{% extends "form.html" %}{% block body %}
<div class="error-summary" role="alert" data-code="rate_limited"><p><strong>{{ text }}</strong></p>
<p>入力いただいた内容はこの画面に残っています。</p>{% include "desk_phone.html" %}</div>{{ super() }}{% endblock %}""")


def answer(scope, code: str, status: int, desk: dict, headers: dict | None = None, **values) -> Response:
    title, text = TEXTS[code]
    if scope["path"].startswith("/api/"):
        detail = JSON_DETAILS.get(code, text).format(**values)
        return JSONResponse({"code": code, "detail": detail}, status, headers)
    return HTMLResponse(PAGE.render(title=title, text=text.format(**values), code=code, desk=desk), status, headers)


class TooLarge(Exception):
    """A body passed its limit while it was being read."""


class Protect:
    """Outermost: adds the security headers to every answer, and answers whatever the routes
    let escape in Japanese with a code (never a bare 500 page, never the error's text in a log)."""

    def __init__(self, app, desk: dict):
        self.app, self.desk = app, desk

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False
        # the blank form shows nothing personal, and a page the browser may keep lets Back bring
        # back what was typed; the stylesheet is left to its validators; everything else: no-store
        blank_form, static = scope["method"] == "GET" and scope["path"] == "/", scope["path"].startswith("/static/")

        async def with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started, headers = True, MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not static:
                    headers.setdefault("cache-control", "no-cache" if blank_form else "no-store")
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except ClientDisconnect:
            return  # nobody is left to answer
        except Exception as error:
            route = getattr(scope.get("route"), "path", "(no route)")
            deep_json = isinstance(error, RecursionError) and scope["path"] == "/api/v1/consultations"
            if not deep_json:
                frames = traceback.extract_tb(error.__traceback__)
                where = "".join(f"\n  {f.filename}:{f.lineno} in {f.name}" for f in frames)
                log.error("request %s %s failed: %s%s", scope["method"], route, type(error).__name__, where)
            if started:
                return
            if deep_json:  # json.loads in api.py gives up at ~1,000 levels of nesting
                response = api.rejected([{"field": "body", "code": "invalid_json", "message": "JSONの入れ子が深すぎます"}])
            else:
                response = answer(scope, "internal_error", 500, self.desk)
            await response(scope, receive, with_headers)


class Bodies:
    """The media type each submission takes, and bodies no larger than their limit: a declared
    Content-Length over it is refused at once, a chunked body as soon as it passes it."""

    def __init__(self, app, desk: dict):
        self.app, self.desk = app, desk

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        limit = API_MAX_BYTES if scope["path"].startswith("/api/") else PAGE_MAX_BYTES
        accepted = MEDIA_TYPES.get((scope["method"], scope["path"]))
        if accepted and not takes(headers.get(b"content-type"), accepted):
            return await answer(scope, "unsupported_media_type", 415, self.desk)(scope, receive, send)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await answer(scope, "too_large", 413, self.desk, kb=limit // 1024)(scope, receive, send)
        read, started = 0, False

        async def counted():
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > limit:
                raise TooLarge
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except TooLarge:
            if started:
                raise
            await answer(scope, "too_large", 413, self.desk, kb=limit // 1024)(scope, receive, send)


def takes(content_type: bytes | None, accepted: set[bytes]) -> bool:
    media_type, options = parse_options_header(content_type)
    charset = options.get(b"charset", b"utf-8").lower()
    return media_type in accepted and (media_type != b"application/json" or charset in (b"utf-8", b"utf8"))


class RateLimits:
    """A few submissions and some more status look-ups per client address in a moving window
    (in this process's memory: each worker process counts on its own)."""

    def __init__(self, app, desk: dict, submissions: str, look_ups: str):
        self.app, self.desk = app, desk
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.submissions, self.look_ups = rates(submissions), rates(look_ups)

    def rule(self, method: str, path: str):
        if method == "POST" and path in ("/api/v1/consultations", "/consultations"):
            return "submit", self.submissions
        if (method, path) == ("POST", "/status") or (method == "GET" and path.startswith("/api/v1/consultations/")):
            return "look_up", self.look_ups
        return None, []

    async def __call__(self, scope, receive, send):
        kind, items = self.rule(scope["method"], scope["path"]) if scope["type"] == "http" else (None, [])
        address = (scope.get("client") or ("unknown",))[0]
        for item in items:
            if not await self.limiter.hit(item, kind, address):
                stats = await self.limiter.get_window_stats(item, kind, address)
                wait_s = max(1, math.ceil(stats.reset_time - time.time()))
                refusal = await self.refusal(scope, receive, kind, wait_s)
                return await refusal(scope, receive, send)
        await self.app(scope, receive, send)

    async def refusal(self, scope, receive, kind: str, wait_s: int) -> Response:
        minutes, headers = math.ceil(wait_s / 60), {"Retry-After": str(wait_s)}
        code = "rate_limited" if kind == "submit" or scope["path"].startswith("/api/") else "look_ups_limited"
        if scope["path"] != "/consultations":
            return answer(scope, code, 429, self.desk, headers, minutes=minutes)
        try:
            async with Request(scope, receive).form() as form:
                values, token, key = typed_values(form), form.get(FormGuard.FIELD), form.get("submission_id")
        except Exception:  # a body too large or unreadable: the short page instead
            return answer(scope, code, 429, self.desk, headers, minutes=minutes)
        text = TEXTS[code][1].format(minutes=minutes)
        # the token and submission id it came with: sending again later is this browser's own post
        # still, and the same submission (recorded once however often it is sent)
        page = FORM_AGAIN.render(prefectures=PREFECTURES, errors={}, values=values, text=text, desk=self.desk,
                                 csrf_token=token if isinstance(token, str) else "",
                                 submission_id=key if isinstance(key, str) else "")
        return HTMLResponse(page, 429, headers)


def rates(notation: str) -> list:
    return [] if notation.strip() == "0" else parse_many(notation)


def install(app: FastAPI, settings: Settings) -> None:
    """The protections around intake's routes, outermost last; HTTP errors in Japanese."""
    desk = {"phone": settings.desk_phone, "hours": settings.desk_hours}
    app.add_middleware(RateLimits, desk=desk, submissions=settings.intake_rate_limit,
                       look_ups=settings.intake_status_rate_limit)
    app.add_middleware(Bodies, desk=desk)
    app.add_middleware(Protect, desk=desk)
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}

    async def http_error(request: Request, error: HTTPException):
        code = codes.get(error.status_code, "bad_request" if error.status_code < 500 else "internal_error")
        return answer(request.scope, code, error.status_code, desk, error.headers)

    app.add_exception_handler(HTTPException, http_error)
