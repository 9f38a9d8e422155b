"""The phone line on the JSON API, for a telephony system and for tests: the entry the phone page
makes (phone_pages.py), by the same use case (phone_entry.py). The consultation goes to intake
through the outbox (consultation.submitted.v1); its answer arrives within seconds and is polled:

  POST   /api/v1/phone-consultations                  202 {submission_id, status: pending, links}
  GET    /api/v1/phone-consultations/{id}             pending | accepted (receipt number, status
                                                      code to read out) | refused (problems)
  DELETE /api/v1/phone-consultations/{id}/status-token   the code was read out: erased now

As on the page, an entry is its operator's (another's is 404: the status code is the caller's
secret). The console checks the body's shape (422, a reason per field in Japanese); intake checks
the rest, and its refusal comes back on the GET."""
import uuid
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from services.console import phone_entry, phone_json
from services.console.accounts import Operator
from services.console.api_docs import refusals
from services.console.schemas import PhoneConsultationIn, PhoneConsultationOut, PhoneRefusal, PhoneSubmittedOut
from services.console.sessions import current_operator
from shared.db import Database
from shared.settings import Settings

PREFIX = "/api/v1/phone-consultations"
NO_STORE = {"Cache-Control": "no-store"}
REFUSALS = refusals(409) | {422: {"model": PhoneRefusal, "description": "The body or the id cannot be read: "
                                  "every field refused, each with why in Japanese. Nothing was sent"}}
SUBMITTED = {202: {"description": "Sent to intake; poll links.status (Location) for its answer", "headers": {
    "Location": {"description": "links.status", "required": True, "schema": {"type": "string"}}}}}


class FieldErrorsRoute(APIRoute):
    """A body or an id FastAPI cannot read is answered with a reason per field (the console's
    other routes give one line for all)."""

    def get_route_handler(self) -> Callable:
        handle = super().get_route_handler()

        async def handled(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as error:
                return phone_json.refusal(error.errors())
        return handled


def router(db: Database, settings: Settings, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix=PREFIX, route_class=FieldErrorsRoute, responses=REFUSALS)

    @api.post("", status_code=202, response_model=PhoneSubmittedOut, responses=SUBMITTED)
    async def enter_phone_consultation(body: PhoneConsultationIn, response: Response,
                    operator: Operator = Depends(current_operator)) -> dict:
        """A consultation taken on the phone, for intake. The same submission_id again is the same
        submission; with other contents, 409."""
        submission_id = await phone_entry.submit(db, operator, phone_json.typed_from(body), clock(),
                                                 body.submission_id)
        link = f"{PREFIX}/{submission_id}"
        response.headers.update(NO_STORE | {"Location": link})
        return {"submission_id": submission_id, "status": "pending", "links": {"status": link}}

    @api.get("/{submission_id}", response_model=PhoneConsultationOut)
    async def phone_consultation(submission_id: uuid.UUID, response: Response,
                     operator: Operator = Depends(current_operator)) -> dict:
        """intake's answer to an entry of this operator's: pending, accepted or refused."""
        entry = await phone_entry.status(db, submission_id, operator, clock(), settings.console_phone_code_minutes)
        response.headers.update(NO_STORE)
        return phone_json.answer_json(entry)

    @api.delete("/{submission_id}/status-token", status_code=204)
    async def status_token_read_out(submission_id: uuid.UUID,
                                    operator: Operator = Depends(current_operator)) -> Response:
        """The status code was read out to the caller: erased now (204 also when it was gone)."""
        await phone_entry.code_read_out(db, submission_id, operator)
        return Response(status_code=204, headers=NO_STORE)

    return api
