"""Intake's pages for people: the web form, the receipt, the status page and the privacy notice
(no JavaScript needed). Every form carries a token against cross-site request forgery."""
import hashlib
import logging
import re
import secrets
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from services.intake import consultations, unavailable
from services.intake.forms import ConsultationForm, Rejected, parse
from services.intake.idempotency import KeyReused, MalformedKey
from shared.calendar import japanese_date
from shared.db import Database
from shared.failures import is_infrastructure
from shared.prefectures import PREFECTURES
from shared.settings import Settings

log = logging.getLogger("payhara.intake")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

# how long the association keeps a consultation after it is closed: its own rules say (privacy.html)
RETENTION = "協会の文書管理規程に定める期間"

# The web form's fields, by the name the errors give them: (input name, label) for the summary,
# in the order of the page.
FORM_FIELDS = {
    "urgent": ("urgent", "いま身の危険を感じている"),
    "consultant.name": ("name", "お名前"),
    "consultant.name_kana": ("name_kana", "ふりがな"),
    "consultant.role": ("role", "ご相談者の区分"),
    "consultant.member_no": ("member_no", "会員番号"),
    "institution.name": ("institution_name", "勤務先の医療機関・施設名"),
    "institution.prefecture": ("institution_prefecture", "勤務先の所在地（都道府県）"),
    "institution.manager_member_no": ("manager_member_no", "開設者・管理者の会員番号"),
    "contact.method": ("contact_method", "ご連絡方法"),
    "contact.phone": ("phone", "電話番号"),
    "contact.email": ("email", "メールアドレス"),
    "preferred_time": ("preferred_time", "お電話の希望時間帯"),
    "category": ("category", "ご相談の種類"),
    "summary": ("summary", "ご相談の内容"),
    "urls": ("urls", "投稿のURL"),
    "consent": ("consent", "個人情報の取り扱いへの同意"),
}
INPUTS = {name for name, _ in FORM_FIELDS.values()}


def _form_field(field: str) -> str | None:
    """"urls.3" -> "urls": the form field an error belongs to, or None (the whole submission)."""
    while field and field not in FORM_FIELDS:
        field = field.rpartition(".")[0]
    return field or None


def error_summary(errors: list[dict]) -> list[dict]:
    """The form's errors in the order of its fields, each with the input it links to."""
    order = list(FORM_FIELDS)
    listed = []
    for e in errors:
        field = _form_field(e["field"])
        name, label = FORM_FIELDS.get(field, (None, None))
        listed.append({"field": e["field"], "input": name, "label": label, "message": e["message"],
                       "rank": order.index(field) if field else len(order)})
    return sorted(listed, key=lambda item: item["rank"])


def errors_by_input(errors: list[dict]) -> dict[str, list[str]]:
    """{input name: [messages]}, for the message next to each field."""
    found: dict[str, list[str]] = {}
    for e in error_summary(errors):
        if e["input"]:
            found.setdefault(e["input"], []).append(e["message"])
    return found


def typed_values(form) -> dict[str, str]:
    """What was typed, to show again: the form's text fields (never a file part, never the token)."""
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if key in INPUTS and isinstance(value, str):
            values.setdefault(key, value)
    return values


def form_payload(form) -> dict:
    """The web form's flat fields in the shape of the JSON API. A part that is not text (a file)
    is passed on as it is, for the form model to refuse as `not_text` on its field."""
    def get(name: str):
        value = form.get(name)
        return (value.strip() or None) if isinstance(value, str) else value

    def flag(name: str):  # a ticked box sends "yes"; an unticked one sends nothing
        value = form.get(name)
        return value == "yes" if value is None or isinstance(value, str) else value

    def given(**fields) -> dict:  # a blank field is a missing one ("必須項目です"), not a wrong type
        return {key: value for key, value in fields.items() if value is not None}
    urls = form.get("urls")
    if isinstance(urls, str):  # one a line; no other separator (a stray control character is reported)
        urls = [line for line in re.split(r"\r\n|\r|\n", urls) if line.strip()]
    return {
        "consultant": given(name=get("name"), name_kana=get("name_kana"), role=get("role"),
                            member_no=get("member_no")),
        "institution": given(name=get("institution_name"), prefecture=get("institution_prefecture"),
                             manager_member_no=get("manager_member_no")),
        "contact": given(method=get("contact_method"), phone=get("phone"), email=get("email")),
        **given(preferred_time=get("preferred_time"), category=get("category"), summary=get("summary")),
        "urls": [] if urls is None else urls if isinstance(urls, list) else [urls],
        "urgent": flag("urgent"),
        "consent": flag("consent"),
    }


class FormGuard:
    """Cross-site request forgery, refused by a signed double submit. The browser holds a random
    value in a cookie only this site sets (HttpOnly, SameSite=Lax); every form carries a token
    that is that value's digest, dated and signed with the server's secret (itsdangerous, the
    Pallets library the desk already uses). A post counts when its token is ours, bound to the
    cookie it came with and younger than MAX_AGE_S: another site can make a browser send the
    cookie, but can neither read it nor sign a token for it. No server-side state, so any
    number of instances agree."""

    COOKIE = "payhara_form"
    FIELD = "csrf_token"
    MAX_AGE_S = 12 * 3600  # a long consultation can take an evening to write
    _WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{43}")

    def __init__(self, secret: str, secure: bool):
        self.signer = URLSafeTimedSerializer(secret, salt="payhara.intake.form")
        self.secure = secure

    @staticmethod
    def _digest(cookie: str) -> str:
        return hashlib.sha256(cookie.encode()).hexdigest()

    def cookie_of(self, request: Request) -> str | None:
        cookie = request.cookies.get(self.COOKIE)
        return cookie if cookie and self._WELL_FORMED.fullmatch(cookie) else None

    def check(self, request: Request, form) -> str:
        """"ok"; "expired" (our token for this very cookie, only too old); or "refused"."""
        cookie, token = self.cookie_of(request), form.get(self.FIELD)
        if cookie is None or not isinstance(token, str) or not token:
            return "refused"
        try:
            bound = self.signer.loads(token, max_age=self.MAX_AGE_S)
            verdict = "ok"
        except SignatureExpired as old:  # the signature is good: only its date is past
            bound, verdict = self.signer.load_payload(old.payload), "expired"
        except BadSignature:
            return "refused"
        return verdict if secrets.compare_digest(str(bound), self._digest(cookie)) else "refused"

    def render(self, request: Request, name: str, context: dict, status_code: int = 200,
               headers: dict | None = None) -> HTMLResponse:
        """A page with a fresh token for its forms, setting the cookie when the browser has none."""
        cookie = self.cookie_of(request)
        new = cookie is None
        cookie = cookie or secrets.token_urlsafe(32)
        context = {**context, "csrf_token": self.signer.dumps(self._digest(cookie))}
        response = templates.TemplateResponse(request, name, context, status_code=status_code, headers=headers)
        if new:
            response.set_cookie(self.COOKIE, cookie, httponly=True, samesite="lax", secure=self.secure, path="/")
        return response


async def submit_once(submissions: consultations.Submissions, parsed: ConsultationForm, form) -> consultations.Receipt:
    """The form's hidden submission id is its idempotency key: the receipt page reloaded (the
    browser posts again) shows the first receipt instead of recording a second consultation. The
    same id with other contents (back, edit, send) is another consultation, keyed by both."""
    key = form.get("submission_id")
    if not isinstance(key, str) or not key:
        return await submissions.submit(parsed, "web")
    try:
        return await submissions.submit(parsed, "web", submission_key=key)
    except MalformedKey:  # not one we wrote: no repeat detection, but never a refusal
        return await submissions.submit(parsed, "web")
    except KeyReused:
        contents = hashlib.sha256(parsed.model_dump_json().encode()).hexdigest()[:32]
        return await submissions.submit(parsed, "web", submission_key=f"{key[:100]}.{contents}")


def _secret(settings: Settings) -> str:
    # a dedicated PAYHARA_FORM_SECRET when settings has one; the salt keeps the two apart
    own = settings.form_secret
    return (own or settings.console_secret).get_secret_value()


def router(sessions: Database, settings: Settings, submissions: consultations.Submissions) -> APIRouter:
    web = APIRouter()
    templates.env.globals["desk"] = {"phone": settings.desk_phone, "hours": settings.desk_hours}
    guard = FormGuard(_secret(settings), secure=settings.public_intake_url.startswith("https://"))

    def form_page(request: Request, values: dict, status_code: int = 200, **context) -> HTMLResponse:
        errors, headers = context.pop("errors", []), context.pop("headers", None)
        return guard.render(request, "form.html", {
            "prefectures": PREFECTURES, "values": values, "errors": errors_by_input(errors),
            "submission_id": secrets.token_urlsafe(16),
            "summary": error_summary(errors), **context}, status_code=status_code, headers=headers)

    def refused(request: Request, verdict: str) -> bool:
        if verdict != "ok":  # why, never what was sent
            log.info("form post refused (%s token): %s", verdict, request.url.path)
        return verdict != "ok"

    @web.get("/", response_class=HTMLResponse)
    async def web_form(request: Request):
        return form_page(request, {})

    @web.post("/consultations", response_class=HTMLResponse)
    async def submit_web_form(request: Request):
        form = await request.form()
        verdict = guard.check(request, form)
        if refused(request, verdict):
            # only what this browser typed on our own page is shown again (a token just too old);
            # from anywhere else, the form comes back empty: what was sent is not the person's own
            kept = typed_values(form) if verdict == "expired" else {}
            return form_page(request, kept, 403, refused=True, kept=bool(kept))
        try:
            parsed = parse(form_payload(form))
        except Rejected as problem:
            return form_page(request, typed_values(form), 422, errors=problem.errors)
        try:
            receipt = await submit_once(submissions, parsed, form)
        except Exception as error:
            if not is_infrastructure(error):
                raise
            # nothing was recorded: the form comes back as it was typed, to send again later
            unavailable.throttled.warn(error)
            return form_page(request, typed_values(form), 503, unavailable=True,
                             headers=unavailable.unavailable_headers())
        return guard.render(request, "receipt.html", {
            "receipt": receipt, "contact_expected_label": japanese_date(receipt.contact_expected_from),
            "urgent": parsed.urgent, "contact_method": parsed.contact.method,
            "preferred_time": parsed.preferred_time})

    @web.get("/status", response_class=HTMLResponse)
    async def status_form(request: Request):
        return guard.render(request, "status.html", {"status": None, "not_found": False})

    @web.post("/status", response_class=HTMLResponse)
    async def status_page(request: Request):
        # a form post, not a query string: the token stays out of URLs, histories and access logs
        form = await request.form()
        if refused(request, guard.check(request, form)):
            return guard.render(request, "unavailable.html", {"problem": "form_refused", "looking_up": True},
                                status_code=403)
        receipt_no = str(form.get("receipt_no") or "").strip().upper()
        status = await consultations.status_of(receipt_no, str(form.get("status_token") or "").strip(), sessions)
        return guard.render(
            request, "status.html", {"status": status, "not_found": status is None},
            status_code=200 if status else 404,
        )

    @web.get("/privacy", response_class=HTMLResponse)
    async def privacy(request: Request):
        return guard.render(request, "privacy.html", {"retention": RETENTION})

    @web.get("/static/intake.css")
    async def stylesheet():
        return FileResponse(HERE / "static" / "intake.css", media_type="text/css")

    return web
