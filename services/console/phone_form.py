"""The phone entry form: the web form's fields (services/intake/templates/form.html) by the same
names, read as typed, turned into the JSON API's body (what consultation.submitted.v1 carries),
and intake's refusals put back next to the field each belongs to."""
import re

from services.console.accounts import MAX_TEXT_CHARS, has_control_characters
from services.console.pages import InvalidCharacters

# intake's error fields -> (input name, label), in the order of the form
FIELDS = {
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
INPUTS = [name for name, _ in FIELDS.values()]
MULTILINE = {"summary", "urls"}
FLAGS = {"urgent", "consent"}
MAX_MULTILINE = 8000  # intake refuses a summary over 4,000 characters, with its own message


def typed_values(form) -> dict[str, str]:
    """What the operator typed, field by field ("yes" for a ticked box); 400 for a control character."""
    values = {}
    for name in INPUTS:
        value = form.get(name)
        if not isinstance(value, str) or not value:
            continue
        if has_control_characters(value, allow_line_breaks=name in MULTILINE):
            raise InvalidCharacters(name)
        values[name] = value[:MAX_MULTILINE if name in MULTILINE else MAX_TEXT_CHARS]
    return values


def payload(typed: dict[str, str]) -> dict:
    """The JSON API's body, as intake's own form handler builds it: blanks left out, URLs one a line."""
    def get(name: str) -> str | None:
        return typed.get(name, "").strip() or None

    def given(**fields) -> dict:
        return {key: value for key, value in fields.items() if value is not None}
    return {
        "consultant": given(name=get("name"), name_kana=get("name_kana"), role=get("role"),
                            member_no=get("member_no")),
        "institution": given(name=get("institution_name"), prefecture=get("institution_prefecture"),
                             manager_member_no=get("manager_member_no")),
        "contact": given(method=get("contact_method"), phone=get("phone"), email=get("email")),
        **given(preferred_time=get("preferred_time"), category=get("category"), summary=get("summary")),
        "urls": [line for line in re.split(r"\r\n|\r|\n", typed.get("urls", "")) if line.strip()],
        "urgent": typed.get("urgent") == "yes",
        "consent": typed.get("consent") == "yes",
    }


def field_of(path: str) -> str | None:
    """"urls.3" -> "urls": the form field an error belongs to, or None (the whole submission)."""
    while path and path not in FIELDS:
        path = path.rpartition(".")[0]
    return path or None


def error_summary(errors: list[dict]) -> list[dict]:
    """intake's errors in the order of the form, each with the input it links to."""
    order = list(FIELDS)
    listed = []
    for e in errors:
        field = field_of(str(e.get("field", "")))
        name, label = FIELDS.get(field, (None, None))
        listed.append({"input": name, "label": label, "message": str(e.get("message", "")),
                       "rank": order.index(field) if field else len(order)})
    return sorted(listed, key=lambda item: item["rank"])


def errors_by_input(errors: list[dict]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for e in error_summary(errors):
        if e["input"]:
            found.setdefault(e["input"], []).append(e["message"])
    return found
