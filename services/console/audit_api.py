"""The audit of personal data views as JSON (`GET /api/v1/audit`), for supervisors: the same
search as the page (audit_pages.py), a page at a time, newest first."""
from fastapi import APIRouter, Depends, Query, Response

from services.console import data_views
from services.console.accounts import Operator
from services.console.api_docs import refusals
from services.console.schemas import AuditOut
from services.console.sessions import require_supervisor
from shared.db import Database

BIGINT = 2**63 - 1


def view_json(row) -> dict:
    return {"id": row.id, "at": row.at, "consultation_id": row.consultation_id, "receipt_no": row.receipt_no,
            "operator": {"id": row.operator_id, "display_name": row.operator_name, "login": row.login},
            "what": row.what, "what_label": data_views.what_label(row.what)}


def router(db: Database) -> APIRouter:
    api = APIRouter(prefix="/api/v1")

    @api.get("/audit", response_model=AuditOut, responses=refusals())
    async def audit(response: Response,
                    receipt_no: str = Query("", max_length=64, description="only this receipt's views (as typed)"),
                    operator_id: int | None = Query(None, ge=1, le=BIGINT, description="only this operator's views"),
                    before: int | None = Query(None, ge=1, le=BIGINT, description="next_before of the page before"),
                    limit: int = Query(data_views.PAGE_SIZE, ge=1, le=200),
                    _: Operator = Depends(require_supervisor)) -> dict:
        """Who saw which consultation's personal data, and on what: newest first. Supervisors only (403)."""
        found = await data_views.search(db, data_views.Search(receipt_no, operator_id, before, limit))
        response.headers["Cache-Control"] = "no-store"
        return {"views": [view_json(row) for row in found.views], "next_before": found.next_before}

    return api
