"""The desk's e-mails: what they say, in plain text and simple HTML, and what they must never carry."""
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from services.notifier import mail
from shared.calendar import japanese_date

CONSULTATION_ID = uuid.UUID("0b6f8a52-8a7d-4c55-9b53-1f4f5f0e2a10")


@dataclass
class Copy:
    consultation_id: uuid.UUID = CONSULTATION_ID
    receipt_no: str = "PH-261124-00017"
    consultant_name: str = "山田 花子"
    email: str | None = "hanako@example.jp"
    contact_expected_from: date = date(2026, 11, 25)
    contact_may_take_longer: bool = False
    urgent: bool = False
    summary: str = "待合室で大声で怒鳴られ、診察の指示に従ってもらえない"
    urls: tuple = ("https://maps.example.com/review/abc123",)


DESK = mail.Desk("desk@example.invalid", "03-1234-5678", "平日 9:00〜18:00")


def received(message) -> EmailMessage:
    """What the recipient's mail program reads."""
    return message_from_bytes(message.as_bytes(), policy=policy.default)


def body(message) -> str:
    """The plain-text part."""
    return received(message).get_body(("plain",)).get_content()


def html(message) -> str:
    return received(message).get_body(("html",)).get_content()


def acknowledgement(copy: Copy | None = None):
    return mail.acknowledgement(copy or Copy(), DESK)


@pytest.mark.parametrize("day, text", [
    (date(2026, 11, 25), "2026年11月25日（水）"),
    (date(2026, 11, 30), "2026年11月30日（月）"),
    (date(2027, 1, 4), "2027年1月4日（月）"),
    (date(2026, 11, 29), "2026年11月29日（日）"),
])
def test_japanese_date_has_the_weekday(day, text):
    assert japanese_date(day) == text


def test_subject_and_body_carry_the_receipt_number_and_the_contact_day():
    message = acknowledgement()
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】ご相談を受け付けました"
    assert received(message).get_body(("plain",)).get_content_charset() == "utf-8"
    assert received(message).get_body(("html",)).get_content_charset() == "utf-8"
    assert "PH-261124-00017" in body(message)
    assert "2026年11月25日（水）以降に" in body(message)
    assert "お電話またはメール" in body(message)
    assert "数日かかる" in body(message)
    assert "平日 9:00〜18:00" in body(message)
    assert "返信" in body(message) and "個人情報" in body(message)
    assert message["To"] == "hanako@example.jp"
    assert message["From"] == "desk@example.invalid"


def test_message_id_is_deterministic_per_consultation():
    first = acknowledgement()
    again = acknowledgement()
    other = acknowledgement(Copy(consultation_id=uuid.uuid4()))
    assert first["Message-ID"] == f"<acknowledgement.{CONSULTATION_ID}@payhara-desk.invalid>"
    assert again["Message-ID"] == first["Message-ID"]
    assert other["Message-ID"] != first["Message-ID"]


def test_the_mail_never_carries_the_summary_or_urls():
    copy = Copy()
    message = acknowledgement(copy)
    wire = message.as_string()
    for secret in (copy.summary, "待合室", *copy.urls, "maps.example.com", "http"):
        assert secret not in body(message)
        assert secret not in wire


def test_no_address_is_a_programming_error():
    with pytest.raises(ValueError, match=str(CONSULTATION_ID)):
        acknowledgement(Copy(email=None))


def fallback(reason: str = "no_answer_after_last_attempt", attempts: int = 3, copy: Copy | None = None):
    return mail.callback_fallback(copy or Copy(), attempts, reason, DESK)


def test_the_fallback_says_how_many_calls_went_unanswered_and_how_to_reach_the_desk():
    message = fallback()
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】お電話がつながりませんでした"
    text = body(message)
    assert "3回お電話しましたが、つながりませんでした" in text
    assert "ご返信" in text and "03-1234-5678" in text and "平日 9:00〜18:00" in text
    assert message["Message-ID"] == f"<callback_fallback.{CONSULTATION_ID}@payhara-desk.invalid>"
    assert message["Message-ID"] != acknowledgement()["Message-ID"]


def test_the_fallback_after_a_wrong_number_asks_to_check_the_number():
    message = fallback("wrong_number", attempts=1)
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】お電話番号をご確認ください"
    assert "番号が違っている" in body(message) and "つながりませんでした" not in body(message)


def test_the_fallback_never_carries_the_summary_or_urls_and_needs_an_address():
    copy = Copy()
    wire = fallback(copy=copy).as_string()
    for secret in (copy.summary, *copy.urls, "http"):
        assert secret not in body(fallback(copy=copy)) and secret not in wire
    with pytest.raises(ValueError, match=str(CONSULTATION_ID)):
        fallback(copy=Copy(email=None))


def test_when_the_desk_was_busy_the_acknowledgement_says_contact_takes_several_days():
    usual = body(acknowledgement())
    busy = body(acknowledgement(Copy(contact_may_take_longer=True)))
    assert "ご相談が集中しているため" in busy and "ご相談が集中しているため" not in usual
    assert "混み合っている場合は" in usual


def rejection(copy: Copy | None = None):
    return mail.rejection(copy or Copy(), DESK)


def test_the_rejection_thanks_explains_and_says_how_to_have_it_checked_by_phone():
    message = rejection()
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】ご相談の受付についてのお知らせ"
    text = body(message)
    assert text.startswith("山田 花子 様")
    assert "ご連絡いただき、ありがとうございます" in text
    assert "会員名簿で確認できた範囲では" in text and "お受けすることができませんでした" in text
    assert "会員が開設・管理する医療機関・介護施設" in text  # the desk's rule, in words
    assert "誤りがあることも考えられます" in text and "お電話ください" in text
    assert "相談窓口: 03-1234-5678（平日 9:00〜18:00、祝日・年末年始を除く）" in text
    assert "受付番号 PH-261124-00017" in text
    assert "#9110" in text and "みんなの人権110番" in text and "0570-003-110" in text
    assert "対象外" not in text and "対象外" not in received(message)["Subject"]
    assert message["Message-ID"] == f"<rejection.{CONSULTATION_ID}@payhara-desk.invalid>"


def test_the_rejection_never_carries_the_summary_or_urls_and_needs_an_address():
    copy = Copy()
    wire = rejection(copy).as_string()
    for secret in (copy.summary, *copy.urls, "http"):
        assert secret not in body(rejection(copy)) and secret not in wire
    with pytest.raises(ValueError, match=str(CONSULTATION_ID)):
        rejection(Copy(email=None))


SLOT = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)  # Tuesday 10:00 in Japan


def booked(attempt: int = 1, by_email: bool = False, copy: Copy | None = None, starts: datetime = SLOT,
           minutes: int = 30):
    return mail.callback_booked(copy or Copy(), mail.Booking(starts, starts + timedelta(minutes=minutes),
                                                             attempt=attempt, by_email=by_email), DESK)


EVERY_MAIL = {
    "acknowledgement": lambda copy: mail.acknowledgement(copy, DESK),
    "urgent acknowledgement": lambda copy: mail.acknowledgement(Copy(**{**copy.__dict__, "urgent": True}), DESK),
    "busy acknowledgement": lambda copy: mail.acknowledgement(
        Copy(**{**copy.__dict__, "contact_may_take_longer": True}), DESK),
    "callback booked": lambda copy: booked(copy=copy),
    "callback booked again": lambda copy: booked(attempt=2, copy=copy),
    "reply by e-mail booked": lambda copy: booked(by_email=True, copy=copy, minutes=540),
    "fallback": lambda copy: mail.callback_fallback(copy, 3, "no_answer_after_last_attempt", DESK),
    "fallback, wrong number": lambda copy: mail.callback_fallback(copy, 1, "wrong_number", DESK),
    "rejection": lambda copy: mail.rejection(copy, DESK),
    "acknowledgement telling the call": lambda copy: mail.acknowledgement(
        copy, DESK, mail.Booking(SLOT, SLOT + timedelta(minutes=30))),
    "urgent acknowledgement telling the reply day": lambda copy: mail.acknowledgement(
        Copy(**{**copy.__dict__, "urgent": True}), DESK, mail.Booking(SLOT, SLOT + timedelta(hours=9), by_email=True)),
}


@pytest.mark.parametrize("which", EVERY_MAIL)
def test_every_mail_is_plain_text_and_simple_html_naming_the_desk_phone_and_hours(which):
    copy = Copy()
    message = received(EVERY_MAIL[which](copy))
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    for text in (body(EVERY_MAIL[which](copy)), html(EVERY_MAIL[which](copy))):
        assert "03-1234-5678" in text and "平日 9:00〜18:00" in text
        assert copy.receipt_no in text and copy.consultant_name in text
        assert copy.summary not in text and "maps.example.com" not in text
    page = html(EVERY_MAIL[which](copy)).lower()
    # nothing fetched from elsewhere, nothing that tracks, nothing that runs
    for forbidden in ("<img", "src=", "href=", "url(", "http", "<script", "<link", "<iframe", "@import"):
        assert forbidden not in page, forbidden
    assert page.startswith("<!doctype html>") and '<html lang="ja">' in page


@pytest.mark.parametrize("which", EVERY_MAIL)
def test_html_escapes_the_consultants_name_and_plain_text_keeps_it_as_typed(which):
    name = '<script>alert("x")</script>山田 & 花子'
    message = EVERY_MAIL[which](Copy(consultant_name=name))
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;山田 &amp; 花子" in html(message)
    assert "<script" not in html(message).lower()
    assert f"{name} 様" in body(message)


def test_the_urgent_acknowledgement_names_110_and_119_before_the_receipt_number():
    copy = Copy(urgent=True)
    page = html(acknowledgement(copy))
    for text in (body(acknowledgement(copy)), page[page.index("<body"):]):  # what the reader sees
        police, ambulance = text.index("110番（警察）"), text.index("119番（救急）")
        assert police < ambulance < text.index(copy.receipt_no) < text.index("これからの流れ")
        assert police < text.index(copy.consultant_name)  # before anything else
    assert body(acknowledgement(copy)).startswith("【身の危険が迫っているときは】")


def test_an_acknowledgement_that_is_not_urgent_does_not_lead_with_emergency_numbers():
    text = body(acknowledgement())
    assert "110番" not in text and "119番" not in text
    assert text.startswith("山田 花子 様")


def test_the_acknowledgement_says_what_happens_next():
    text = body(acknowledgement())
    assert "会員名簿で" in text and "あらためてメールでお知らせします" in text


def test_the_booked_mail_gives_the_call_window_on_the_japan_clock():
    message = booked()
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】お電話の日時のお知らせ"
    for text in (body(message), html(message)):
        assert "12月1日（火）10:00〜10:30 ごろ" in text
        assert "つながりませんでした" not in text
    assert message["Message-ID"] == f"<callback_booked.{CONSULTATION_ID}@payhara-desk.invalid>"


def test_a_slot_late_in_the_utc_day_is_on_the_next_japanese_day():
    late = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)  # Tuesday 8:30 in Japan
    assert "12月1日（火）08:30〜09:00 ごろ" in body(booked(starts=late))
    assert mail.call_window(late, late + timedelta(hours=16)) == "12月1日（火）08:30〜12月2日（水）00:30 ごろ"


def test_a_later_attempt_says_the_desk_tried_and_will_try_again_then():
    message = booked(attempt=2, starts=SLOT + timedelta(days=1, hours=3))
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】次のお電話の日時のお知らせ"
    text = body(message)
    assert "お電話しましたが、つながりませんでした" in text and "あらためてお電話します" in text
    assert "12月2日（水）13:00〜13:30 ごろ" in text
    assert message["Message-ID"] == f"<callback_booked.{CONSULTATION_ID}.2@payhara-desk.invalid>"
    assert booked(attempt=3)["Message-ID"] != message["Message-ID"] != booked()["Message-ID"]


def test_a_reply_by_email_gives_the_day_it_is_due_not_a_call_window():
    message = booked(by_email=True, minutes=540)
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】ご返信の予定日のお知らせ"
    text = body(message)
    assert "12月1日（火）に、メールでご連絡します" in text
    assert "10:00" not in text and "お電話します" not in text


def test_message_ids_are_per_kind_consultation_and_attempt():
    ids = {mail.message_id(kind, CONSULTATION_ID, attempt)
           for kind in ("acknowledgement", "callback_booked") for attempt in (1, 2)}
    assert len(ids) == 4
    assert mail.message_id("acknowledgement", CONSULTATION_ID) == f"<acknowledgement.{CONSULTATION_ID}@payhara-desk.invalid>"


def test_the_rejection_points_to_public_help_in_html_too():
    page = html(rejection())
    assert "#9110" in page and "みんなの人権110番" in page and "0570-003-110" in page
    assert re.search(r"会員名簿で確認できた範囲では", page) and "対象外" not in page


def test_a_receipt_written_once_the_call_is_booked_names_its_day_and_time_instead_of_promising_a_mail():
    message = mail.acknowledgement(Copy(), DESK, mail.Booking(SLOT, SLOT + timedelta(minutes=30)))
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】ご相談を受け付けました"
    for text in (body(message), html(message)):
        assert "12月1日（火）10:00〜10:30 ごろ" in text and "お電話します" in text
        assert "あらためてメールでお知らせします" not in text
    assert message["Message-ID"] == f"<acknowledgement.{CONSULTATION_ID}@payhara-desk.invalid>"


def test_a_receipt_written_once_the_reply_day_is_booked_names_the_day_and_urgent_still_leads_with_110():
    copy = Copy(**{**Copy().__dict__, "urgent": True})
    text = body(mail.acknowledgement(copy, DESK, mail.Booking(SLOT, SLOT + timedelta(hours=9), by_email=True)))
    assert "12月1日（火）に、メールでご連絡します" in text and "お電話します" not in text
    assert text.index("110番") < text.index(copy.receipt_no)
