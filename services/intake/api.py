"""Intake's HTTP entry points: the JSON API and the web form, both over the same use cases."""
import json
from pathlib import Path

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from services.intake import consultations, unavailable
from services.intake.forms import Rejected, parse
from shared.calendar import japanese_date
from shared.db import Database
from shared.failures import is_infrastructure
from shared.prefectures import PREFECTURES
from shared.settings import Settings

MAX_BODY_BYTES = 64 * 1024
NOT_FOUND = {"code": "not_found", "detail": "受付番号または確認用コードが正しくありません"}
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


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


# The web form's fields, by the name the errors give them: (input name, label) for the summary.
FORM_FIELDS = {
    "consultant.name": ("name", "お名前"),
    "consultant.name_kana": ("name_kana", "ふりがな"),
    "consultant.role": ("role", "ご相談者の区分"),
    "consultant.member_no": ("member_no", "会員番号"),
    "institution.name": ("institution_name", "勤務先の医療機関・施設名"),
    "institution.prefecture": ("institution_prefecture", "所在地（都道府県）"),
    "institution.manager_member_no": ("manager_member_no", "開設者・管理者の会員番号"),
    "contact.method": ("contact_method", "ご連絡方法"),
    "contact.phone": ("phone", "電話番号"),
    "contact.email": ("email", "メールアドレス"),
    "category": ("category", "ご相談の種類"),
    "summary": ("summary", "ご相談の内容"),
    "urls": ("urls", "投稿のURL"),
    "consent": ("consent", "個人情報の取り扱いへの同意"),
}


def error_summary(errors: list[dict]) -> list[dict]:
    """The form's errors in the order of its fields, each with the input it links to."""
    order = list(FORM_FIELDS)
    listed = []
    for e in errors:
        field = e["field"] if e["field"] in FORM_FIELDS else e["field"].split(".")[0]
        name, label = FORM_FIELDS.get(field, (None, None))
        listed.append({"field": e["field"], "input": name, "label": label, "message": e["message"],
                       "rank": order.index(field) if field in FORM_FIELDS else len(order)})
    return sorted(listed, key=lambda item: item["rank"])


def form_payload(form) -> dict:
    """The web form's flat fields in the shape of the JSON API."""
    def get(name: str) -> str | None:
        return (form.get(name) or "").strip() or None

    def given(**fields) -> dict:  # a blank field is a missing one ("必須項目です"), not a wrong type
        return {key: value for key, value in fields.items() if value is not None}
    return {
        "consultant": given(name=get("name"), name_kana=get("name_kana"), role=get("role"),
                            member_no=get("member_no")),
        "institution": given(name=get("institution_name"), prefecture=get("institution_prefecture"),
                             manager_member_no=get("manager_member_no")),
        "contact": given(method=get("contact_method"), phone=get("phone"), email=get("email")),
        **given(category=get("category"), summary=get("summary")),
        "urls": [u for u in (form.get("urls") or "").splitlines() if u.strip()],
        "consent": form.get("consent") == "yes",
    }


def router(sessions: Database, settings: Settings) -> APIRouter:
    api = APIRouter()
    serials = consultations.ReceiptSerials()
    first_free = consultations.FirstFreeDay()
    templates.env.globals["desk"] = {"phone": settings.desk_phone, "hours": settings.desk_hours}

    @api.post("/api/v1/consultations", status_code=202)
    async def submit_consultation(request: Request):
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return rejected([{"field": "body", "code": "too_large", "message": "送信内容が大きすぎます"}])
        try:
            payload = json.loads(body)
        except ValueError:
            return rejected([{"field": "body", "code": "invalid_json", "message": "JSONの形式が正しくありません"}])
        try:
            form = parse(payload)
        except Rejected as problem:
            return rejected(problem.errors)
        receipt = await consultations.submit(form, "web", sessions, serials, first_free)
        return JSONResponse(status_code=202, content=receipt_body(receipt))

    @api.get("/api/v1/consultations/{receipt_no}")
    async def consultation_status(receipt_no: str, x_status_token: str | None = Header(default=None)):
        status = await consultations.status_of(receipt_no, x_status_token, sessions)
        if status is None:
            return JSONResponse(status_code=404, content=NOT_FOUND)
        return status

    @api.get("/", response_class=HTMLResponse)
    async def web_form(request: Request):
        return templates.TemplateResponse(request, "form.html", {"prefectures": PREFECTURES, "errors": {}, "values": {}})

    @api.post("/consultations", response_class=HTMLResponse)
    async def submit_web_form(request: Request):
        form = await request.form()
        try:
            parsed = parse(form_payload(form))
        except Rejected as problem:
            errors = {e["field"]: e["message"] for e in problem.errors}
            return templates.TemplateResponse(
                request, "form.html", {"prefectures": PREFECTURES, "errors": errors, "values": dict(form),
                                       "summary": error_summary(problem.errors)},
                status_code=422,
            )
        try:
            receipt = await consultations.submit(parsed, "web", sessions, serials, first_free)
        except Exception as error:
            if not is_infrastructure(error):
                raise
            # nothing was recorded: the form comes back as it was typed, to send again later
            unavailable.throttled.warn(error)
            return templates.TemplateResponse(
                request, "form.html", {"prefectures": PREFECTURES, "errors": {}, "values": dict(form),
                                       "unavailable": True},
                status_code=503, headers=unavailable.unavailable_headers())
        return templates.TemplateResponse(request, "receipt.html", {
            "receipt": receipt, "contact_expected_label": japanese_date(receipt.contact_expected_from)})

    @api.get("/status", response_class=HTMLResponse)
    async def status_form(request: Request):
        return templates.TemplateResponse(request, "status.html", {"status": None, "not_found": False})

    @api.post("/status", response_class=HTMLResponse)
    async def status_page(request: Request):
        # a form post, not a query string: the token stays out of URLs, histories and access logs
        form = await request.form()
        receipt_no = str(form.get("receipt_no") or "").strip().upper()
        status = await consultations.status_of(receipt_no, str(form.get("status_token") or "").strip(), sessions)
        return templates.TemplateResponse(
            request, "status.html", {"status": status, "not_found": status is None},
            status_code=200 if status else 404,
        )

    return api
