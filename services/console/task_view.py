"""How a task reads to an operator: Japanese labels, due times on the Japan wall clock, phone
numbers as written in Japan, which URLs become links, who holds it, whether it is overdue, and
a task as JSON (the shape of schemas.TaskOut)."""
from datetime import datetime

import phonenumbers

from services.console.task_reasons import task_reason_label
from shared.calendar import WEEKDAYS_JA, to_japan

KIND_LABELS = {"call": "電話連絡", "email": "メール連絡", "review": "会員確認", "decline": "対象外のご連絡",
               "unreachable": "電話がつながらない", "unschedulable": "日程を調整できない", "bounced": "メール不達"}
CATEGORY_LABELS = {"in_person": "院内・施設内でのハラスメント", "online": "インターネット上の悪質な投稿", "both": "その両方"}
CONTACT_LABELS = {"phone": "電話", "email": "メール"}


def japan_time(moment: datetime) -> str:
    local = to_japan(moment)
    return f"{local:%Y/%m/%d}({WEEKDAYS_JA[local.weekday()]}) {local:%H:%M}"


def due_label(starts: datetime | None, ends: datetime | None) -> str:
    """When the task is due, on the Japan wall clock: `2026/11/25(水) 10:00〜10:30`."""
    if starts is None:
        return "指定なし"
    if ends is None:
        return japan_time(starts)
    same_day = to_japan(starts).date() == to_japan(ends).date()
    return f"{japan_time(starts)}〜{to_japan(ends):%H:%M}" if same_day else f"{japan_time(starts)}〜{japan_time(ends)}"


def phone_label(typed: str | None) -> str | None:
    """A number as it is written in Japan (03-1234-5678, 090-1234-5678), one from abroad with
    its country code (+1 202-555-0134); one that is no phone number is shown as it was typed."""
    if not typed:
        return typed
    try:
        number = phonenumbers.parse(typed, "JP")
    except phonenumbers.NumberParseException:
        return typed
    if not phonenumbers.is_possible_number(number):
        return typed
    domestic = number.country_code == 81
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL if domestic
                                      else phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def phone_link(typed: str | None) -> str | None:
    """A tel: link that dials the number wherever the operator's phone is (E.164); None for one
    that is no phone number, which stays text."""
    try:
        number = phonenumbers.parse(typed or "", "JP")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return "tel:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_overdue(row, now: datetime) -> bool:
    """Past the end of its slot (or its due time, when it has no end); a task without one never is."""
    due = row.due_ends_at or row.due_starts_at
    return due is not None and due < now


def is_web_link(url: str) -> bool:
    """Only http(s) addresses become links; anything else (javascript:, data:) stays text."""
    return url.lower().startswith(("http://", "https://"))


def task_json(row) -> dict:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None
    return {
        "task_id": str(row.task_id), "consultation_id": str(row.consultation_id), "receipt_no": row.receipt_no,
        "kind": row.kind, "kind_label": KIND_LABELS.get(row.kind, f"その他（{row.kind}）"), "reason": row.reason,
        "reason_label": task_reason_label(row.kind, row.reason),
        "due_starts_at": iso(row.due_starts_at), "due_ends_at": iso(row.due_ends_at),
        "consultant_name": row.consultant_name,
        "contact": {"method": row.contact_method, "phone": row.phone, "phone_label": phone_label(row.phone),
                    "email": row.email},
        "category": row.category, "summary": row.summary, "urls": list(row.urls),
        "issued_at": iso(row.issued_at), "status": row.status,
        "booking_id": str(row.booking_id) if row.booking_id else None, "attempt": row.attempt,
        "holder": ({"id": row.claimed_by, "display_name": row.holder_name, "until": iso(row.claimed_until)}
                   if row.claimed_by is not None else None),
        "closed_at": iso(row.closed_at),
    }


def holder_label(row, now: datetime) -> str:
    """Who works on a task, as the queue shows it."""
    if row.claimed_by is None:
        return "未着手"
    if row.claimed_until is not None and row.claimed_until < now:
        return f"{row.holder_name} さん（担当の期限切れ・引き継げます）"
    return f"{row.holder_name} さんが対応中（{to_japan(row.claimed_until):%H:%M} まで）"
