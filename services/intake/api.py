"""Intake's JSON API: a consultation submitted by a program, and its status by receipt number.

Each route reads its request itself (the body is parsed and validated by forms.parse, so a bad
one gets the desk's 422 with Japanese text, never the framework's); what it takes and answers is
declared for the OpenAPI document from services/intake/schemas.py."""
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.intake import consultations, schemas
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
    api = APIRouter(tags=["consultations"])

    @api.post(
        "/api/v1/consultations", status_code=202, summary="Submit a consultation",
        responses=schemas.SUBMIT_RESPONSES,
        openapi_extra={"requestBody": schemas.SUBMISSION_BODY, "parameters": [schemas.IDEMPOTENCY_KEY_HEADER]},
    )
    async def submit_consultation(request: Request):
        """Records the consultation and answers its receipt once it is committed."""
        idempotency_key = request.headers.get("idempotency-key")
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

    @api.get(
        "/api/v1/consultations/{receipt_no}", summary="The status of a consultation",
        responses=schemas.STATUS_RESPONSES,
        openapi_extra={"parameters": [schemas.RECEIPT_NO_PARAMETER, schemas.STATUS_TOKEN_HEADER]},
    )
    async def consultation_status(request: Request):
        """The consultant's view of their receipt, given its number and status code."""
        receipt_no, token = request.path_params["receipt_no"], request.headers.get("x-status-token")
        status = await consultations.status_of(receipt_no, token, sessions)
        if status is None:
            return JSONResponse(status_code=404, content=NOT_FOUND)
        return status

    return api
