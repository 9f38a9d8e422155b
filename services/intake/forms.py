"""What a consultant submits, validated; every refusal carries a field, a machine code and a
Japanese message a person can act on."""
import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from shared.prefectures import PREFECTURES

KANA = re.compile(r"[\u3041-\u3096\u30A1-\u30FA\u30FC\u30FB\s]+")
PHONE = re.compile(r"0\d{9,10}")
MAX_URLS = 20


def _problem(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ConsultantForm(Strict):
    name: str = Field(min_length=1, max_length=100)
    name_kana: str = Field(min_length=1, max_length=100)
    role: Literal["member", "medical_staff", "care_staff"]
    member_no: str | None = Field(default=None, max_length=20)

    @field_validator("name_kana")
    @classmethod
    def _kana(cls, v: str) -> str:
        if not KANA.fullmatch(v):
            raise _problem("kana_only", "ふりがなはひらがなまたはカタカナで入力してください")
        return v

    @field_validator("member_no")
    @classmethod
    def _member_no(cls, v: str | None) -> str | None:
        return unicodedata.normalize("NFKC", v).strip().upper() or None if v else None


class InstitutionForm(Strict):
    name: str | None = Field(default=None, max_length=200)
    prefecture: str | None = None
    manager_member_no: str | None = Field(default=None, max_length=20)

    @field_validator("prefecture")
    @classmethod
    def _prefecture(cls, v: str | None) -> str | None:
        if v and v not in PREFECTURES:
            raise _problem("unknown_prefecture", "都道府県名を正しく選んでください")
        return v or None

    @field_validator("manager_member_no")
    @classmethod
    def _member_no(cls, v: str | None) -> str | None:
        return unicodedata.normalize("NFKC", v).strip().upper() or None if v else None


class ContactForm(Strict):
    method: Literal["phone", "email"]
    phone: str | None = None
    email: EmailStr | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if not v:
            return None
        digits = re.sub(r"[-\s()]", "", unicodedata.normalize("NFKC", v))
        if not PHONE.fullmatch(digits):
            raise _problem("phone_format", "電話番号は0から始まる10桁または11桁で入力してください")
        return digits

    @field_validator("email", mode="before")
    @classmethod
    def _blank_email(cls, v):
        return v or None


class ConsultationForm(Strict):
    consultant: ConsultantForm
    institution: InstitutionForm = InstitutionForm()
    contact: ContactForm
    category: Literal["in_person", "online", "both"]
    summary: str = Field(min_length=1, max_length=4000)
    urls: list[str] = Field(default_factory=list, max_length=MAX_URLS)
    consent: bool

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        urls = [u.strip() for u in v if u and u.strip()]
        for u in urls:
            if not re.fullmatch(r"https?://[^\s/$.?#][^\s]{1,2000}", u):
                raise _problem("url_format", "URLは http:// または https:// から始まる形で入力してください")
        return urls

    @field_validator("consent")
    @classmethod
    def _consent(cls, v: bool) -> bool:
        if v is not True:
            raise _problem("consent_required", "個人情報の取り扱いへの同意が必要です")
        return v


class Rejected(ValueError):
    """A submission refused, with every reason: [{"field", "code", "message"}]."""

    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


def _coherence(form: ConsultationForm) -> list[dict]:
    """Rules that span fields; each names the field a person must fix."""
    rules = [
        (form.contact.method == "phone" and not form.contact.phone,
         "contact.phone", "phone_required", "電話でのご連絡を希望される場合は電話番号を入力してください"),
        (form.contact.method == "email" and not form.contact.email,
         "contact.email", "email_required", "メールでのご連絡を希望される場合はメールアドレスを入力してください"),
        (form.consultant.role == "member" and not form.consultant.member_no,
         "consultant.member_no", "member_no_required", "会員の方は会員番号を入力してください"),
        (form.consultant.role != "member" and not form.institution.name,
         "institution.name", "institution_required", "勤務先の医療機関・施設名を入力してください"),
        (form.category in ("online", "both") and not form.urls,
         "urls", "urls_required", "インターネット上の投稿のご相談では投稿のURLを入力してください"),
    ]
    return [{"field": f, "code": c, "message": m} for broken, f, c, m in rules if broken]


MESSAGES = {
    "missing": "必須項目です",
    "string_too_short": "入力してください",
    "string_too_long": "長すぎます（{max_length}文字以内）",
    "too_long": "多すぎます（{max_length}件まで）",
    "literal_error": "選択肢から選んでください",
    "value_error": "メールアドレスの形式が正しくありません",
    "bool_parsing": "はい・いいえで答えてください",
    "bool_type": "はい・いいえで答えてください",
    "string_type": "文字で入力してください",
    "list_type": "一覧の形で入力してください",
    "model_type": "項目の形が正しくありません",
    "model_attributes_type": "項目の形が正しくありません",
}


def field_errors(error: ValidationError) -> list[dict]:
    """Per-field reasons: {"field", "code", "message"} (message in Japanese)."""
    found = []
    for e in error.errors(include_url=False, include_input=False):
        code = e["type"]
        template = MESSAGES.get(code)
        message = template.format(**(e.get("ctx") or {})) if template else e["msg"]
        field = ".".join(str(p) for p in e["loc"] if p != "body")
        found.append({"field": field or "body", "code": code, "message": message})
    return found


def parse(payload: object) -> ConsultationForm:
    """Validate a submission; raises Rejected with every reason at once."""
    try:
        form = ConsultationForm.model_validate(payload)
    except ValidationError as error:
        raise Rejected(field_errors(error)) from None
    problems = _coherence(form)
    if problems:
        raise Rejected(problems)
    return form
