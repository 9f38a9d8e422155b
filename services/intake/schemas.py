"""What intake's JSON API says it takes and answers, for its OpenAPI document (/openapi.json).

The request body is described from the model that validates it (forms.ConsultationForm), never
written twice; the route still reads and parses the body itself (api.py), so a bad body gets the
desk's own 422 with Japanese text. The answers are the shapes api.py, protection.py and
unavailable.py build; tests/integration/test_intake_openapi.py fuzzes the API against them."""
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.intake import receipts
from services.intake.forms import ConsultationForm
from services.intake.idempotency import KeyReused, MalformedKey

RECEIPT_NO = "^PH-[0-9]{6}-[0-9]{5,}$"  # receipts.RECEIPT_PATTERN, anchored
STATUS_CODE = "^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$"  # receipts.STATUS_ALPHABET
IDEMPOTENCY_KEY = "^[!-~]([ -~]{0,198}[!-~])?$"  # idempotency.KEY_FORMAT: printable ASCII, 1 to 200


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Receipt(Answer):
    """The receipt of a consultation recorded (committed before this answer is sent)."""

    consultation_id: UUID
    receipt_no: str = Field(pattern=RECEIPT_NO, description="受付番号 (with a Damm check digit)")
    status_token: str = Field(pattern=STATUS_CODE, description="確認用コード: with the receipt number, it shows the status")
    contact_expected_from: date = Field(description="The business day (Japan time) from which the desk contacts the consultant")
    contact_may_take_longer: bool = Field(description="The desk is busy: the first contact may take some days longer")


class FieldError(Answer):
    field: str = Field(description='The field, as a dotted path ("contact.phone", "urls.2"), "body" or "Idempotency-Key"')
    code: str = Field(description="A machine code (consent_required, phone_format, ...)")
    message: str = Field(description="What to do, in Japanese")


class Refused(Answer):
    """A submission not recorded, with every reason at once."""

    code: Literal["invalid_submission", MalformedKey.code, KeyReused.code]
    detail: str
    errors: list[FieldError] = Field(min_length=1)


class Problem(Answer):
    code: str
    detail: str = Field(description="What happened and what to do, in Japanese")


class NotFound(Problem):
    """No receipt with this number and status code (which of the two is wrong is not told)."""

    code: Literal["not_found"]


class TooLarge(Problem):
    code: Literal["too_large"]


class UnsupportedMediaType(Problem):
    code: Literal["unsupported_media_type"]


class RateLimited(Problem):
    code: Literal["rate_limited"]


class Unavailable(Problem):
    code: Literal["temporarily_unavailable"]


class InternalError(Problem):
    code: Literal["internal_error"]


class Slot(Answer):
    starts_at: datetime
    ends_at: datetime
    label: str = Field(description="The slot in Japanese, Japan time")


class ConsultationStatus(Answer):
    """The consultant's view of their receipt (consultations.status_of)."""

    receipt_no: str = Field(pattern=RECEIPT_NO)
    status: Literal[tuple(receipts.STATUS_LABELS_JA)]
    status_label: str = Field(description="The status in Japanese")
    received_at: datetime
    contact_expected_from: date
    contact_expected_label: str = Field(description="contact_expected_from in Japanese")
    contact_may_take_longer: bool
    slot: Slot | None = Field(description="The call's slot, once one is booked")
    acknowledgement_sent_at: datetime | None = Field(description="When the acknowledgement e-mail was sent")


def inline_schema(model: type[BaseModel]) -> dict:
    """`model`'s JSON schema (validation mode) with its nested models written in place: a schema
    an operation can carry on its own, without entries in the document's components."""
    schema = model.model_json_schema(ref_template="{model}")
    definitions = schema.pop("$defs", {})

    def resolved(node):
        if isinstance(node, dict):
            if "$ref" in node:
                rest = {key: value for key, value in node.items() if key != "$ref"}
                return {**resolved(definitions[node["$ref"]]), **resolved(rest)}
            return {key: resolved(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolved(item) for item in node]
        return node
    return resolved(schema)


def json_content(model: type[BaseModel]) -> dict:
    return {"application/json": {"schema": inline_schema(model)}}


def retry_after(why: str) -> dict:
    return {"Retry-After": {"description": why, "required": True, "schema": {"type": "integer", "minimum": 1}}}


EXAMPLE = {
    "consultant": {"name": "見本 花子", "name_kana": "みほん はなこ", "role": "member", "member_no": "M0001"},
    "institution": {"name": "架空クリニック", "prefecture": "東京都"},
    "contact": {"method": "email", "email": "hanako@example.com"},
    "preferred_time": "any",
    "category": "online",
    "summary": "口コミサイトに事実と異なる投稿をされました。",
    "urls": ["https://maps.example.com/review/1"],
    "urgent": False,
    "consent": True,
}

SUBMISSION_BODY = {
    "required": True,
    "description": "The consultation (UTF-8 JSON, at most 64 KiB). Every field is checked and every "
                   "problem answered at once (422); members give their member number, staff their "
                   "institution and prefecture, posts online their URLs.",
    "content": {"application/json": {"schema": inline_schema(ConsultationForm),
                                     "examples": {"member": {"summary": "A member, about posts online",
                                                             "value": EXAMPLE}}}},
}

IDEMPOTENCY_KEY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Sent again with the same key and the same consultation within a day, the first "
                   "receipt is answered again (with `Idempotent-Replayed: true`) and nothing new is "
                   "recorded; the same key with another consultation is refused (422).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": IDEMPOTENCY_KEY},
}
RECEIPT_NO_PARAMETER = {
    "name": "receipt_no", "in": "path", "required": True,
    "description": "The receipt number, as typed (full-width characters and spaces are folded)",
    "schema": {"type": "string"}, "example": "PH-261130-02578",
}
STATUS_TOKEN_HEADER = {
    "name": "X-Status-Token", "in": "header", "required": False,
    "description": "The status code given with the receipt (any case, with or without hyphens)",
    "schema": {"type": "string"}, "example": "7K3M-Q9XD-F2HT",
}

# answers every route of the API may give, from the protections around them
LIMITED = {"model": RateLimited, "description": "Too many requests from this address: try again later",
           "headers": retry_after("Seconds until a request is taken again")}
UNAVAILABLE = {"model": Unavailable, "description": "The database cannot be reached: nothing was recorded",
               "headers": retry_after("Seconds to wait before trying again")}
FAILED = {"model": InternalError, "description": "An unexpected failure: nothing was recorded"}

SUBMIT_RESPONSES = {
    202: {"model": Receipt, "description": "Recorded: the receipt",
          "headers": {"Idempotent-Replayed": {
              "description": "`true` when this is the receipt of an earlier submission with the same Idempotency-Key",
              "schema": {"type": "string", "enum": ["true"]}}}},
    413: {"model": TooLarge, "description": "The body is larger than 64 KiB"},
    415: {"model": UnsupportedMediaType, "description": "Not application/json in UTF-8"},
    422: {"model": Refused, "description": "Not recorded: every reason, per field (the body, a field or the Idempotency-Key)"},
    429: LIMITED,
    500: FAILED,
    503: UNAVAILABLE,
}
STATUS_RESPONSES = {
    200: {"model": ConsultationStatus, "description": "The status of the consultation"},
    404: {"model": NotFound, "description": "No such receipt, or the status code does not match it"},
    429: LIMITED,
    500: FAILED,
    503: UNAVAILABLE,
}
