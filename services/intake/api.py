"""Intake's JSON API: a consultation submitted by a program, and its status by receipt number."""
import json

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.intake import consultations
from services.intake.forms import Rejected, parse
from services.intake.idempotency import SubmissionKeyRefused
from shared.db import Database

MAX_BODY_BYTES = 64 * 1024
NOT_FOUND = {"code": "not_found", "detail": "受付番号または確認用コードが正しくありません"}


def rejected(errors: list[dict]) -> JSONResponse:
    return JSONResponse(
        status_code=422, content={"code": "invalid_submission", "detail": "入力内容をご確認ください", "errors": errors}
    )


def receipt_body(receipt: consultations.Receipt) -> dict:
    return {
        "consultation_id": str(receipt.consultation_id),
        "receipt_no": receipt.receipt_no,
        "status_token": receipt.status_token,
        "contact_expected_from": receipt.contact_expected_from.isoformat(),
        "contact_may_take_longer": receipt.contact_may_take_longer,
    }


def router(sessions: Database, submissions: consultations.Submissions) -> APIRouter:
    api = APIRouter()

    @api.post("/api/v1/consultations", status_code=202)
    async def submit_consultation(request: Request, idempotency_key: str | None = Header(default=None)):
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return rejected([{"field": "body", "code": "too_large", "message": "送信内容が大きすぎます"}])
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # 1,000 levels deep is not a consultation
            return rejected([{"field": "body", "code": "invalid_json", "message": "JSONの形式が正しくありません"}])
        try:
            form = parse(payload)
        except Rejected as problem:
            return rejected(problem.errors)
        try:  # a repeat with the same key gets the first receipt, status code included
            receipt = await submissions.submit(form, "web", submission_key=idempotency_key)
        except SubmissionKeyRefused as problem:
            return JSONResponse(status_code=422, content={"code": problem.code, "detail": problem.message, "errors": [
                {"field": "Idempotency-Key", "code": problem.code, "message": problem.message}]})
        headers = {"Idempotent-Replayed": "true"} if receipt.repeated else None
        return JSONResponse(status_code=202, content=receipt_body(receipt), headers=headers)

    @api.get("/api/v1/consultations/{receipt_no}")
    async def consultation_status(receipt_no: str, x_status_token: str | None = Header(default=None)):
        status = await consultations.status_of(receipt_no, x_status_token, sessions)
        if status is None:
            return JSONResponse(status_code=404, content=NOT_FOUND)
        return status

    return api
