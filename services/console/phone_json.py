"""The phone line's JSON, for phone_api.py: a body in intake's JSON API's fields becomes what an
operator would have typed in the phone form (phone_form.FIELDS names the inputs), so that the
API and the page enter a consultation one way; a body the console cannot take is refused field
by field in Japanese; an entry's state is answered as PhoneConsultationOut."""
from collections.abc import Sequence

from fastapi.responses import JSONResponse

from services.console.errors import REFUSALS
from services.console.phone_entry import PhoneStatus
from services.console.phone_form import FIELDS, field_of, typed_values
from services.console.schemas import PhoneConsultationIn

ACCEPTED = ("receipt_no", "consultation_id", "contact_expected_from", "contact_may_take_longer")
WHERE = {"body", "path", "query", "header", "cookie"}  # the first step of FastAPI's error locations
REASONS = {
    "missing": "必須です。",
    "string_type": "文字列で送ってください。",
    "string_unicode": "文字として読めない部分（対になっていないサロゲートなど）があります。",
    "bool_type": "true か false で送ってください。",
    "bool_parsing": "true か false で送ってください。",
    "literal_error": "決められた値のどれかで送ってください（{expected}）。",
    "string_too_long": "{max_length}文字以内にしてください。",
    "too_long": "合わせて{max_length}文字以内にしてください。",  # the URLs (schemas.PhoneConsultationIn)
    "list_type": "配列（[...]）で送ってください。",
    "model_type": "オブジェクト（{{...}}）で送ってください。",
    "model_attributes_type": "JSON のオブジェクト（{{...}}）を Content-Type: application/json で送ってください。",
    "dict_type": "オブジェクト（{{...}}）で送ってください。",
    "extra_forbidden": "この項目は受け付けていません。項目名を確かめてください。",
    "uuid_type": "UUID（例：3f2b8c1e-0000-4000-8000-000000000000）で送ってください。",
    "uuid_parsing": "UUID（例：3f2b8c1e-0000-4000-8000-000000000000）で送ってください。",
    "json_invalid": "JSON として読めません。",
}


def typed_from(body: PhoneConsultationIn) -> dict[str, str]:
    """The phone form's inputs for the body ("yes" for true, URLs one a line); 400 for a control
    character, as on the page."""
    data, typed = body.model_dump(), {}
    for path, (name, _) in FIELDS.items():
        value = _at(data, path)
        if isinstance(value, bool):
            value = "yes" if value else None
        elif isinstance(value, list):
            value = "\n".join(value)
        if value:
            typed[name] = value
    return typed_values(typed)


def _at(data: dict, path: str):
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def refusal(errors: Sequence[dict]) -> JSONResponse:
    """422 with every field the console refused, each with why in Japanese (PhoneRefusal)."""
    problems = []
    for e in errors:
        steps = list(e["loc"][1:] if e["loc"] and e["loc"][0] in WHERE else e["loc"])
        # as text that can be sent back: a key of the body may hold a lone surrogate
        field = ".".join(str(step) for step in steps).encode("utf-8", "replace").decode() or "body"
        reason = REASONS.get(e["type"])
        reason = reason.format(**e.get("ctx", {})) if reason else "形式が正しくありません。"
        label = FIELDS.get(field_of(field) or "", (None, None))[1]
        problems.append({"field": field, "code": e["type"], "message": f"{label}：{reason}" if label else reason})
    return JSONResponse({"code": "invalid_request", "detail": REFUSALS["invalid_request"][1], "problems": problems},
                        status_code=422, headers={"Cache-Control": "no-store"})


def answer_json(entry: PhoneStatus) -> dict:
    """An entry as PhoneConsultationOut: pending until intake answers, then accepted or refused."""
    state = {"waiting": "pending"}.get(entry.state, entry.state)
    return {
        "submission_id": entry.submission_id, "status": state, "submitted_at": entry.submitted_at,
        **{name: getattr(entry.answer, name) if state == "accepted" else None for name in ACCEPTED},
        "status_token": entry.code, "status_token_until": entry.code_until,
        "problems": entry.answer.errors if state == "refused" else [],
    }
