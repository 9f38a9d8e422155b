"""Intake's pages for people: the web form, the receipt, the status page (no JavaScript needed)."""
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.intake import consultations, unavailable
from services.intake.forms import Rejected, parse
from shared.calendar import japanese_date
from shared.db import Database
from shared.failures import is_infrastructure
from shared.prefectures import PREFECTURES
from shared.settings import Settings

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


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


def router(sessions: Database, settings: Settings, submissions: consultations.Submissions) -> APIRouter:
    web = APIRouter()
    templates.env.globals["desk"] = {"phone": settings.desk_phone, "hours": settings.desk_hours}

    @web.get("/", response_class=HTMLResponse)
    async def web_form(request: Request):
        return templates.TemplateResponse(request, "form.html", {"prefectures": PREFECTURES, "errors": {}, "values": {}})

    @web.post("/consultations", response_class=HTMLResponse)
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
            receipt = await submissions.submit(parsed, "web")
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

    @web.get("/status", response_class=HTMLResponse)
    async def status_form(request: Request):
        return templates.TemplateResponse(request, "status.html", {"status": None, "not_found": False})

    @web.post("/status", response_class=HTMLResponse)
    async def status_page(request: Request):
        # a form post, not a query string: the token stays out of URLs, histories and access logs
        form = await request.form()
        receipt_no = str(form.get("receipt_no") or "").strip().upper()
        status = await consultations.status_of(receipt_no, str(form.get("status_token") or "").strip(), sessions)
        return templates.TemplateResponse(
            request, "status.html", {"status": status, "not_found": status is None},
            status_code=200 if status else 404,
        )

    return web
