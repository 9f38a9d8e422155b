"""Supervisors' view of who saw consultations' personal data (`GET /audit`): newest first, for one
receipt number or one operator, 50 at a time. An operator gets 403. The JSON API: audit_api.py."""
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.console import data_views
from services.console.accounts import Operator
from services.console.pages import page, templates
from services.console.sessions import require_supervisor
from shared.db import Database

templates.env.globals.update(what_label=data_views.what_label)


def whole_number(typed: str | None) -> int | None:
    """A number from the query ("" or anything else: none), as a link or the filter's form gives it."""
    return int(typed) if typed and typed.isascii() and typed.isdigit() and len(typed) < 19 else None


def router(db: Database) -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request, receipt_no: str = "", operator: str = "", before: str = "",
                    _: Operator = Depends(require_supervisor)) -> Response:
        criteria = data_views.Search(receipt_no=data_views.typed_receipt_no(receipt_no)[:64],
                                     operator_id=whole_number(operator), before=whole_number(before))
        found = await data_views.search(db, criteria)
        return page(request, "audit.html", {"criteria": criteria, "found": found,
                                            "operators": await data_views.operators_to_choose(db)})

    return web
