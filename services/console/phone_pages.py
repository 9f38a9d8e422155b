"""The phone line's pages: the consultation form an operator fills in during the call (the web
form's fields), and the page that waits for intake's answer (refreshing itself every second, no
JavaScript) and then shows the receipt number and status code to read back, or intake's refusals
next to the fields, with what was typed."""
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import phone_entry
from services.console.accounts import Operator
from services.console.pages import page, templates
from services.console.phone_form import error_summary, errors_by_input, typed_values
from services.console.sessions import current_operator
from shared.calendar import japanese_date
from shared.db import Database
from shared.prefectures import PREFECTURES
from shared.settings import Settings

SLOW_AFTER = timedelta(seconds=20)  # waiting longer than this: intake or the broker may be away
templates.env.globals.update(prefectures=PREFECTURES)
templates.env.filters.update(japanese_date=japanese_date)


def submission_id_of(form) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(form.get("submission_id") or ""))
    except ValueError:
        return None


def router(db: Database, settings: Settings, clock: Callable[[], datetime]) -> APIRouter:
    web = APIRouter(include_in_schema=False)

    def form_page(request: Request, values: dict, errors: list[dict] | None = None) -> Response:
        errors = errors or []
        return page(request, "phone.html", {
            "values": values, "errors": errors_by_input(errors), "summary": error_summary(errors),
            "submission_id": uuid.uuid4()}, 200)

    @web.get("/phone", response_class=HTMLResponse)
    async def phone_form(request: Request, _: Operator = Depends(current_operator)) -> Response:
        return form_page(request, {})

    @web.post("/phone")
    async def phone_submit(request: Request, operator: Operator = Depends(current_operator)) -> Response:
        form = await request.form()
        submission_id = await phone_entry.submit(db, operator, typed_values(form), clock(), submission_id_of(form))
        return RedirectResponse(f"/phone/{submission_id}", status_code=303)

    @web.get("/phone/{submission_id}", response_class=HTMLResponse)
    async def phone_answer(submission_id: uuid.UUID, request: Request,
                           operator: Operator = Depends(current_operator)) -> Response:
        now = clock()
        entry = await phone_entry.status(db, submission_id, operator, now, settings.console_phone_code_minutes)
        if entry.state == "refused":
            return form_page(request, entry.typed, entry.answer.errors)
        return page(request, "phone_status.html", {
            "entry": entry, "slow": entry.state == "waiting" and now - entry.submitted_at > SLOW_AFTER,
            "code_minutes": settings.console_phone_code_minutes})

    @web.post("/phone/{submission_id}/read-out")
    async def code_read_out(submission_id: uuid.UUID, operator: Operator = Depends(current_operator)) -> Response:
        await phone_entry.code_read_out(db, submission_id, operator)
        return RedirectResponse(f"/phone/{submission_id}", status_code=303)

    return web
