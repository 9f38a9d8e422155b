"""What a consultant submits, validated; every refusal carries a field, a machine code and a
Japanese message a person can act on."""
import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from shared.prefectures import PREFECTURES

# A reading, compared on its NFKC form (which folds half-width katakana, full-width tildes and
# hyphens, and every width of space): words of kana, each word starting with a kana and going on
# with kana or the marks typed inside a reading: the long-vowel mark and what is typed for it
# (ASCII, full-width and Unicode hyphens, dashes, minus, tildes, wave dash), the iteration marks,
# voicing marks left uncombined, and the middle dot of a foreign name.
_KANA = "\u3041-\u3096\u30A1-\u30FA"
_IN_READING = "\u30FC\\-\u2010-\u2015\u2212~\u301C\u309D\u309E\u30FD\u30FE\u3099\u309A\u30FB"
READING_WORD = re.compile(f"[{_KANA}][{_KANA}{_IN_READING}]*")
# the stand-alone voicing marks (゛゜) fold to a space and a mark: typed after a kana, they voice it
_SPACING_VOICING = str.maketrans({"\u309B": "\u3099", "\u309C": "\u309A"})
# what member numbers are made of in the registry (after NFKC and upper-casing)
MEMBER_NO = re.compile(r"[0-9A-Z][0-9A-Z_-]*")
_HYPHENS = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30FC", "-"))
PHONE = re.compile(r"0\d{9,10}")
MAX_URLS = 20


def _problem(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


def is_reading(text: str) -> bool:
    """Kana as a person types a reading, in any width, with spaces of any width between words."""
    words = unicodedata.normalize("NFKC", text.translate(_SPACING_VOICING)).split()
    return bool(words) and all(READING_WORD.fullmatch(word) for word in words)


def member_number(text: str | None) -> str | None:
    """A member number as the registry writes it: 'ｍ－０００１ ' -> 'M-0001'; None when blank.
    Raises when it holds what no member number has (kanji, kana, symbols)."""
    if not text:
        return None
    number = "".join(unicodedata.normalize("NFKC", text).upper().translate(_HYPHENS).split())
    if not number:
        return None
    if not MEMBER_NO.fullmatch(number):
        raise _problem("member_no_format", "会員番号は英数字で入力してください（全角・半角のどちらでも入力できます）")
    return number


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
        # kept as typed (only trimmed): eligibility folds widths itself when it compares
        if not is_reading(v):
            raise _problem("kana_only", "ふりがなはひらがなまたはカタカナで入力してください")
        return v

    @field_validator("member_no")
    @classmethod
    def _member_no(cls, v: str | None) -> str | None:
        return member_number(v)


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
        return member_number(v)


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
