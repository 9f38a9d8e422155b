"""Pure rules of the e-mails the desk sends: what they say, never how they travel.

Each mail is a Jinja2 template pair in templates/mail/: `<kind>.txt`, rendered as it is, and
`<kind>.html`, autoescaped (a consultant's name is text, never markup); sent as
multipart/alternative. The HTML is simple on purpose: no images, no links, nothing fetched from
elsewhere, nothing that tracks. Every mail names the desk's phone number and hours.

An e-mail carries the receipt number and dates, never the consultation's summary or URLs: mail
crosses servers the desk does not control.
"""
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from shared.calendar import WEEKDAYS_JA, japanese_date, to_japan
from shared.settings import Settings

DESK_NAME = "患者ハラスメント・悪質投稿 相談窓口"
MESSAGE_ID_DOMAIN = "payhara-desk.invalid"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "mail"
# Public lines for what the desk cannot take on; a short list, the same on intake's status page
# (services/intake/templates/ineligible.html).
HELP_LINES = (
    {"when": "脅迫やつきまといなど、身の危険を感じるとき",
     "where": "警察相談専用電話 #9110（お近くの警察の相談窓口につながります。差し迫った危険があるときは 110番）"},
    {"when": "インターネット上の誹謗中傷", "where": "法務局「みんなの人権110番」 0570-003-110"},
)

_templates = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"], default_for_string=False),
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    auto_reload=False)  # read once: no stat of the files for every mail


class Addressee(Protocol):
    """What an e-mail needs from the consultation copy (a row of notifier.consultations)."""

    consultation_id: uuid.UUID
    receipt_no: str
    consultant_name: str
    email: str | None
    contact_expected_from: date
    contact_may_take_longer: bool
    urgent: bool


@dataclass(frozen=True)
class Desk:
    """Who writes, and how to reach the desk by phone."""

    mail_from: str
    phone: str
    hours: str

    @classmethod
    def of(cls, settings: Settings) -> "Desk":
        return cls(settings.mail_from, settings.desk_phone, settings.desk_hours)


@dataclass(frozen=True)
class Booking:
    """A booked callback as callback.scheduled.v1 gives it: a call in the slot, or a reply by
    e-mail due on the slot's day (by_email)."""

    starts_at: datetime
    ends_at: datetime
    attempt: int = 1
    by_email: bool = False


def message_id(kind: str, consultation_id: uuid.UUID, attempt: int = 1) -> str:
    """Deterministic per (kind, consultation, attempt), so a repeated send of the same e-mail is
    recognisable downstream; the first attempt's id is the one every kind always had."""
    again = f".{attempt}" if attempt > 1 else ""
    return f"<{kind}.{consultation_id}{again}@{MESSAGE_ID_DOMAIN}>"


def acknowledgement(c: Addressee, desk: Desk, booking: Booking | None = None) -> Message:
    """The receipt: its number, the promised day, what happens next; for an urgent consultation
    the emergency numbers come first. When the first callback is already booked as the receipt is
    written, it names the call's day and time (or the reply's day) instead of the promised day:
    one mail that says it all, rather than a second one a moment later."""
    return _compose("acknowledgement", c, desk, f"【受付番号 {c.receipt_no}】ご相談を受け付けました",
                    contact_day=japanese_date(c.contact_expected_from), busy=c.contact_may_take_longer,
                    urgent=c.urgent, booking=booking, **_booking_details(booking))


def callback_booked(c: Addressee, booking: Booking, desk: Desk) -> Message:
    """When the desk will call (the slot on the Japan clock), or by which day it will reply by
    e-mail; from the second attempt on, that the desk tried to call and will try again then."""
    again = booking.attempt > 1 and not booking.by_email
    what = "ご返信の予定日" if booking.by_email else "次のお電話の日時" if again else "お電話の日時"
    return _compose("callback_booked", c, desk, f"【受付番号 {c.receipt_no}】{what}のお知らせ",
                    attempt=booking.attempt, by_email=booking.by_email, again=again, **_booking_details(booking))


def _booking_details(booking: Booking | None) -> dict:
    if booking is None:
        return {}
    return dict(window=call_window(booking.starts_at, booking.ends_at),
                reply_day=day_of(to_japan(booking.starts_at).date()))


def callback_fallback(c: Addressee, attempts: int, reason: str, desk: Desk) -> Message:
    """When the desk's calls did not reach the consultant (`reason`, as in callback.exhausted.v1):
    ask them to reply or to call the desk. It says how many calls were made, never why the
    consultant called."""
    wrong_number = reason == "wrong_number"
    subject = "お電話番号をご確認ください" if wrong_number else "お電話がつながりませんでした"
    return _compose("callback_fallback", c, desk, f"【受付番号 {c.receipt_no}】{subject}",
                    attempts=attempts, wrong_number=wrong_number)


def rejection(c: Addressee, desk: Desk) -> Message:
    """When eligibility could not confirm the consultant (eligibility.rejected.v1, whatever its
    reason): thank them, say why the desk cannot take it on as far as the registry shows, ask them
    to call if it may be a mistake, and point to public help. Never a bare 対象外, never why they
    called."""
    return _compose("rejection", c, desk, f"【受付番号 {c.receipt_no}】ご相談の受付についてのお知らせ",
                    help_lines=HELP_LINES)


def day_of(day: date) -> str:
    """2026-12-01 -> 12月1日（火）."""
    return f"{day.month}月{day.day}日（{WEEKDAYS_JA[day.weekday()]}）"


def call_window(starts: datetime, ends: datetime) -> str:
    """A slot on the Japan wall clock: 12月1日（火）10:00〜10:30 ごろ."""
    start, end = to_japan(starts), to_japan(ends)
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{day_of(end.date())}{end:%H:%M}"
    return f"{day_of(start.date())}{start:%H:%M}〜{until} ごろ"


def _compose(kind: str, c: Addressee, desk: Desk, subject: str, attempt: int = 1, **details) -> Message:
    """UTF-8 text and HTML, built with the classic email API: the same message on the wire as
    EmailMessage would give, for a fraction of its CPU (one is built for every receipt)."""
    if not c.email:
        raise ValueError(f"consultation {c.consultation_id} has no e-mail address to write to")
    values = dict(details, name=c.consultant_name, receipt_no=c.receipt_no, desk=desk, desk_name=DESK_NAME,
                  subject=subject)
    # a boundary of our own: given none, the generator makes a random one and compiles a regular
    # expression per mail to check it against the text; a line of base64 never starts with "--"
    message = MIMEMultipart("alternative", boundary=f"=_payhara_{uuid.uuid4().hex}")
    message.attach(MIMEText(_templates.get_template(f"{kind}.txt").render(values), "plain", "utf-8"))
    message.attach(MIMEText(_templates.get_template(f"{kind}.html").render(values), "html", "utf-8"))
    message["Subject"] = Header(subject, "utf-8")
    message["From"] = desk.mail_from
    message["To"] = c.email
    message["Message-ID"] = message_id(kind, c.consultation_id, attempt)
    return message
