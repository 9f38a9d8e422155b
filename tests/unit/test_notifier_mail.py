"""The acknowledgement e-mail: what it says, and what it must never carry."""
import uuid
from dataclasses import dataclass
from datetime import date
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
    summary: str = "待合室で大声で怒鳴られ、診察の指示に従ってもらえない"
    urls: tuple = ("https://maps.example.com/review/abc123",)


def received(message) -> EmailMessage:
    """What the recipient's mail program reads."""
    return message_from_bytes(message.as_bytes(), policy=policy.default)


def body(message) -> str:
    return received(message).get_content()


@pytest.mark.parametrize("day, text", [
    (date(2026, 11, 25), "2026年11月25日（水）"),
    (date(2026, 11, 30), "2026年11月30日（月）"),
    (date(2027, 1, 4), "2027年1月4日（月）"),
    (date(2026, 11, 29), "2026年11月29日（日）"),
])
def test_japanese_date_has_the_weekday(day, text):
    assert japanese_date(day) == text


def test_subject_and_body_carry_the_receipt_number_and_the_contact_day():
    message = mail.acknowledgement(Copy(), "desk@example.invalid")
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】ご相談を受け付けました"
    assert received(message).get_content_charset() == "utf-8"
    assert "PH-261124-00017" in body(message)
    assert "2026年11月25日（水）以降に" in body(message)
    assert "お電話またはメール" in body(message)
    assert "数日かかる" in body(message)
    assert "平日 9:00〜18:00" in body(message)
    assert "返信" in body(message) and "個人情報" in body(message)
    assert message["To"] == "hanako@example.jp"
    assert message["From"] == "desk@example.invalid"


def test_message_id_is_deterministic_per_consultation():
    first = mail.acknowledgement(Copy(), "desk@example.invalid")
    again = mail.acknowledgement(Copy(), "desk@example.invalid")
    other = mail.acknowledgement(Copy(consultation_id=uuid.uuid4()), "desk@example.invalid")
    assert first["Message-ID"] == f"<acknowledgement.{CONSULTATION_ID}@payhara-desk.invalid>"
    assert again["Message-ID"] == first["Message-ID"]
    assert other["Message-ID"] != first["Message-ID"]


def test_the_mail_never_carries_the_summary_or_urls():
    copy = Copy()
    message = mail.acknowledgement(copy, "desk@example.invalid")
    wire = message.as_string()
    for secret in (copy.summary, "待合室", *copy.urls, "maps.example.com", "http"):
        assert secret not in body(message)
        assert secret not in wire


def test_no_address_is_a_programming_error():
    with pytest.raises(ValueError, match=str(CONSULTATION_ID)):
        mail.acknowledgement(Copy(email=None), "desk@example.invalid")


def fallback(reason: str = "no_answer_after_last_attempt", attempts: int = 3, copy: Copy | None = None):
    return mail.callback_fallback(copy or Copy(), attempts, reason, "desk@example.invalid", "03-1234-5678",
                                  "平日 9:00〜18:00")


def test_the_fallback_says_how_many_calls_went_unanswered_and_how_to_reach_the_desk():
    message = fallback()
    assert received(message)["Subject"] == "【受付番号 PH-261124-00017】お電話がつながりませんでした"
    text = body(message)
    assert "3回お電話しましたが、つながりませんでした" in text
    assert "ご返信" in text and "03-1234-5678" in text and "平日 9:00〜18:00" in text
    assert message["Message-ID"] == f"<callback_fallback.{CONSULTATION_ID}@payhara-desk.invalid>"
    assert message["Message-ID"] != mail.acknowledgement(Copy(), "desk@example.invalid")["Message-ID"]


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
    usual = body(mail.acknowledgement(Copy(), "desk@example.invalid"))
    busy = body(mail.acknowledgement(Copy(contact_may_take_longer=True), "desk@example.invalid"))
    assert "ご相談が集中しているため" in busy and "ご相談が集中しているため" not in usual
    assert "混み合っている場合は" in usual


def rejection(copy: Copy | None = None):
    return mail.rejection(copy or Copy(), "desk@example.invalid", "03-1234-5678", "平日 9:00〜18:00")


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
