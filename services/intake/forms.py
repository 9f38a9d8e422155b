"""What a consultant submits, validated; every refusal carries a field, a machine code and a
Japanese message a person can act on, and every refusal comes at once: the rules that span
fields are checked even when a field failed, as far as the fields they read are sound."""
import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from services.intake import post_urls
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
MAX_SUMMARY = 4000
# Control characters (Unicode Cc) and lone surrogates (Cs) have no place in what a person writes:
# a NUL is refused by the database, the others garble screens and exports. Only multi-line text
# (the summary) keeps its tabs and line breaks.
_CONTROL_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _problem(code: str, message: str, context: dict | None = None) -> PydanticCustomError:
    return PydanticCustomError(code, message, context)


NOT_TEXT = ("not_text", "文字以外のもの（ファイルなど）は送れません。文字で入力してください")
CONTROL = ("control_character",
           "使用できない文字（制御文字）が含まれています。貼り付けた文字の場合は、その部分を入力し直してください")


def _text_value(value, multiline: bool = False) -> str | None:
    """Text as typed, trimmed; anything else (a file part of a form, a number in JSON) is refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _problem(*NOT_TEXT)
    value = value.strip()
    if (_CONTROL_IN_TEXT if multiline else _CONTROL_IN_LINE).search(value):
        raise _problem(*CONTROL)
    return value


def _text(multiline: bool = False) -> BeforeValidator:
    return BeforeValidator(lambda value: _text_value(value, multiline))


def _flag(value):
    """A yes/no as JSON (true/false) or a form ("yes"/"on"/...) gives it; a file part is no answer."""
    if value is not None and not isinstance(value, (bool, int, str)):
        raise _problem(*NOT_TEXT)
    return value


Line = Annotated[str, _text()]
Text = Annotated[str, _text(multiline=True)]
Flag = Annotated[bool, BeforeValidator(_flag)]


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
    name: Line = Field(min_length=1, max_length=100)
    name_kana: Line = Field(min_length=1, max_length=100)
    role: Annotated[Literal["member", "medical_staff", "care_staff"], _text()]  # no default: a person chooses
    member_no: Line | None = Field(default=None, max_length=20)

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
    name: Line | None = Field(default=None, max_length=200)
    prefecture: Line | None = None
    manager_member_no: Line | None = Field(default=None, max_length=20)

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
    method: Annotated[Literal["phone", "email"], _text()]
    phone: Line | None = None
    email: Annotated[EmailStr, _text()] | None = None

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
    # when a call suits the consultant: 午前 9:00-12:00, 午後 13:00-18:00, or any time
    preferred_time: Annotated[Literal["morning", "afternoon", "any"], _text()] = "any"
    category: Annotated[Literal["in_person", "online", "both"], _text()]
    summary: Text = Field(min_length=1, max_length=MAX_SUMMARY)
    urls: list[str] = Field(default_factory=list, max_length=MAX_URLS)  # normalised by _urls
    urgent: Flag = False  # "I feel in danger now": the desk treats the consultation as urgent
    consent: Flag

    @field_validator("urls", mode="before")
    @classmethod
    def _urls(cls, v):
        """Each address normalised and duplicates dropped (services/intake/post_urls.py); every
        refused line is reported, whatever is wrong with the others."""
        if not isinstance(v, list):
            return v  # the list type refuses it
        problems, lines = [], []
        for index, item in enumerate(v):
            try:
                lines.append(_text_value(item) or "")
            except PydanticCustomError as problem:
                problems.append((index, problem.type, problem.message()))
                lines.append("")  # a blank line: post_urls skips it and keeps the numbering
        try:
            found = post_urls.posts(lines)
        except post_urls.UrlProblems as refused:
            problems += [(p.index, p.code, p.message_ja) for p in refused.problems]
        if problems:  # spread into one error per line by field_errors
            raise _problem("url_problems", "投稿のURLをご確認ください",
                           {"count": sum(1 for item in v if item), "problems": sorted(problems)})
        return [post.url for post in found]

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


STAFF = ("medical_staff", "care_staff")
# Rules that span fields: (fields read, when broken, the field a person must fix, code, message).
# The field to fix is blank whenever a rule breaks, so it can carry no other error.
RULES: list[tuple[tuple[str, ...], Callable[[Callable[[str], object]], bool], str, str, str]] = [
    (("contact.method", "contact.phone"), lambda v: v("contact.method") == "phone" and not v("contact.phone"),
     "contact.phone", "phone_required", "電話でのご連絡を希望される場合は電話番号を入力してください"),
    (("contact.method", "contact.email"), lambda v: v("contact.method") == "email" and not v("contact.email"),
     "contact.email", "email_required", "メールでのご連絡を希望される場合はメールアドレスを入力してください"),
    (("consultant.role", "consultant.member_no"),
     lambda v: v("consultant.role") == "member" and not v("consultant.member_no"),
     "consultant.member_no", "member_no_required", "会員の方は会員番号を入力してください"),
    (("consultant.role", "institution.name"), lambda v: v("consultant.role") in STAFF and not v("institution.name"),
     "institution.name", "institution_required", "勤務先の医療機関・施設名を入力してください"),
    (("consultant.role", "institution.prefecture"),
     lambda v: v("consultant.role") in STAFF and not v("institution.prefecture"),
     "institution.prefecture", "prefecture_required", "勤務先の所在地（都道府県）を選んでください"),
    (("category", "urls"), lambda v: v("category") in ("online", "both") and not v("urls"),
     "urls", "urls_required", "インターネット上の投稿のご相談では投稿のURLを入力してください"),
]


def _blank_to_none(value):
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        return [item for item in value if _blank_to_none(item) is not None]
    return value


def _reader(data: object) -> Callable[[str], object]:
    """path -> value ("contact.phone"); a blank string, a missing part or a non-object as None."""
    def read(path: str):
        here = data
        for key in path.split("."):
            if not isinstance(here, dict):
                return None
            here = here.get(key)
        return _blank_to_none(here)
    return read


def _coherence(data: object, broken: set[str]) -> list[dict]:
    """The cross-field rules that break, skipping those reading a field that has its own error."""
    def sound(path: str) -> bool:
        return not any(b == path or path.startswith(b + ".") or b.startswith(path + ".") for b in broken)
    read = _reader(data)
    return [{"field": f, "code": c, "message": m}
            for reads, breaks, f, c, m in RULES if all(sound(p) for p in reads) and breaks(read)]


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
# what a person is asked for when they left a required field out
MISSING = {
    "consultant.name": "お名前を入力してください",
    "consultant.name_kana": "ふりがなを入力してください",
    "consultant.role": "ご相談者の区分を選んでください",
    "contact.method": "ご連絡方法を選んでください",
    "category": "ご相談の種類を選んでください",
    "summary": "ご相談の内容を入力してください",
    "consent": "個人情報の取り扱いへの同意が必要です",
}
SUMMARY_TOO_LONG = f"ご相談の内容は{MAX_SUMMARY:,}文字以内でお書きください（詳しいことは、ご連絡の際にお聞きします）"


def field_errors(error: ValidationError) -> list[dict]:
    """Per-field reasons: {"field", "code", "message"} (message in Japanese)."""
    found = []
    for e in error.errors(include_url=False, include_input=False):
        code = e["type"]
        field = ".".join(str(p) for p in e["loc"] if p != "body") or "body"
        if code == "url_problems":  # every refused address, each with its own code
            many = e["ctx"]["count"] > 1
            found.extend({"field": field, "code": line_code, "message": f"{index + 1}件目のURL：{text}" if many else text}
                         for index, line_code, text in e["ctx"]["problems"])
            continue
        template = MESSAGES.get(code)
        message = template.format(**(e.get("ctx") or {})) if template else e["msg"]
        if code in ("missing", "string_too_short") and field in MISSING:
            message = MISSING[field]
        elif code == "string_too_long" and field == "summary":
            message = SUMMARY_TOO_LONG
        found.append({"field": field, "code": code, "message": message})
    return found


def parse(payload: object) -> ConsultationForm:
    """Validate a submission; raises Rejected with every reason at once: each field's own and the
    rules across fields, in one round."""
    try:
        form = ConsultationForm.model_validate(payload)
    except ValidationError as error:
        errors = field_errors(error)
        raise Rejected(errors + _coherence(payload, {e["field"] for e in errors})) from None
    problems = _coherence(form.model_dump(), set())
    if problems:
        raise Rejected(problems)
    return form
