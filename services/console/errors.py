"""Every refusal and error of the console in Japanese: a page for people, and under /api/ JSON
with a machine code and a Japanese detail, `{"code": "unauthenticated", "detail": "..."}`."""
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError, TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from services.console.pages import InvalidCharacters, page
from services.console.refused import ActionRefused
from services.console.sessions import CsrfRefused, NotAllowed, NotLoggedIn

log = logging.getLogger("payhara.console")

REFUSALS = {
    "bad_request": (400, "リクエストの形式が正しくありません。"),
    "invalid_characters": (400, "入力に使えない文字（制御文字）が含まれています。入力し直してください。"),
    "unauthenticated": (401, "ログインしてください。"),
    "login_refused": (401, "ログインIDまたはパスワードが正しくありません。"),  # alike whether the login exists
    "forbidden": (403, "この操作には責任者の権限が必要です。"),
    "csrf_failed": (403, "画面の有効期限が切れたか、ほかのサイトから送信されました。"
                         "画面を開き直してから、もう一度お試しください。"),
    "not_found": (404, "お探しのページは見つかりません。"),
    "method_not_allowed": (405, "この操作はできません。"),
    "conflict": (409, "ほかの操作と重なったため、実行できませんでした。画面を開き直してから、もう一度お試しください。"),
    "task_taken": (409, "このタスクはほかのオペレーターが対応中です。"),
    "task_closed": (409, "このタスクはすでに対応済みです。"),
    "not_claimed": (409, "このタスクを担当していません。先に「担当する」を押してください。"),
    "wrong_task_kind": (409, "この種類のタスクでは、この操作はできません。"),
    "no_booking": (409, "このタスクには予約の情報がないため、通話の結果を記録できません。責任者に連絡してください。"),
    "already_decided": (409, "この相談の会員確認は、すでに判断が記録されています。"),
    "login_locked": (429, "ログインの失敗が続いたため、しばらくログインできません。"),
    "payload_too_large": (413, "送信された内容が大きすぎます。"),
    "unsupported_media_type": (415, "JSON（Content-Type: application/json）で送信してください。"),
    "invalid_request": (422, "入力の形式が正しくありません。"),
    "server_error": (500, "サーバーで問題が起きました。しばらくしてからもう一度お試しください。"),
    "unavailable": (503, "ただいまご利用いただけません。しばらくしてからもう一度お試しください。"),
}
BY_STATUS = {status: code for code, (status, _) in reversed(REFUSALS.items())}  # the first of a status
UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError)  # the database away


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def refusal(request: Request, code: str, detail: str | None = None, status_code: int | None = None,
            headers: dict | None = None) -> Response:
    status, message = REFUSALS[code]
    status, message = status_code or status, detail or message
    if is_api(request):
        return JSONResponse({"code": code, "detail": message}, status_code=status,
                            headers={"Cache-Control": "no-store"} | (headers or {}))
    return page(request, "error.html", {"message": message, "status": status}, status, headers)


def unauthenticated(request: Request) -> Response:
    """Pages go to the log-in form; the API says 401."""
    if is_api(request):
        return refusal(request, "unauthenticated")
    return RedirectResponse("/login", status_code=303, headers={"Cache-Control": "no-store"})


def install(app: FastAPI) -> None:
    async def not_logged_in(request: Request, _: Exception) -> Response:
        return unauthenticated(request)

    async def not_allowed(request: Request, _: Exception) -> Response:
        return refusal(request, "forbidden")

    async def csrf_refused(request: Request, _: Exception) -> Response:
        return refusal(request, "csrf_failed")

    async def invalid_characters(request: Request, _: Exception) -> Response:
        return refusal(request, "invalid_characters")

    async def http_error(request: Request, error: HTTPException) -> Response:
        code = BY_STATUS.get(error.status_code, "bad_request" if error.status_code < 500 else "server_error")
        return refusal(request, code, status_code=error.status_code, headers=error.headers)

    async def action_refused(request: Request, error: ActionRefused) -> Response:
        return refusal(request, error.code, error.detail)

    async def invalid_request(request: Request, _: Exception) -> Response:
        return refusal(request, "invalid_request")

    async def server_error(request: Request, error: Exception) -> Response:
        if isinstance(error, UNREACHABLE):
            log.warning("console request failed, database unreachable: %s", type(error).__name__)
            return refusal(request, "unavailable")
        return refusal(request, "server_error")

    for error, handler in ((NotLoggedIn, not_logged_in), (NotAllowed, not_allowed), (CsrfRefused, csrf_refused),
                           (InvalidCharacters, invalid_characters), (ActionRefused, action_refused),
                           (HTTPException, http_error), (RequestValidationError, invalid_request),
                           (Exception, server_error)):
        app.add_exception_handler(error, handler)
