"""Pure rules of the e-mails the desk sends: what they say, never how they travel.

An e-mail carries the receipt number and the promised contact day, never the consultation's
summary or URLs: mail crosses servers the desk does not control.
"""
import uuid
from datetime import date
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from typing import Protocol

from shared.calendar import japanese_date

DESK_NAME = "患者ハラスメント・悪質投稿 相談窓口"
MESSAGE_ID_DOMAIN = "payhara-desk.invalid"
USUALLY = "混み合っている場合は、ご連絡まで数日かかることがあります。あらかじめご了承ください。"
BUSY = ("ただいまご相談が集中しているため、ご連絡まで数日お時間をいただいています。\n"
        "ご相談は確かに受け付けました。順番にご連絡しますので、お待ちください。")


class Addressee(Protocol):
    """What an e-mail needs from the consultation copy (a row of notifier.consultations)."""

    consultation_id: uuid.UUID
    receipt_no: str
    consultant_name: str
    email: str | None
    contact_expected_from: date
    contact_may_take_longer: bool


def message_id(kind: str, consultation_id: uuid.UUID) -> str:
    """Deterministic, so a repeated send of the same e-mail is recognisable downstream."""
    return f"<{kind}.{consultation_id}@{MESSAGE_ID_DOMAIN}>"


def acknowledgement(c: Addressee, mail_from: str) -> Message:
    """UTF-8 text, built with the classic email API: the same message on the wire as
    EmailMessage would give, for a quarter of its CPU (it is built for every receipt)."""
    if not c.email:
        raise ValueError(f"consultation {c.consultation_id} has no e-mail address to acknowledge to")
    message = MIMEText(_acknowledgement_body(c), "plain", "utf-8")
    message["Subject"] = Header(f"【受付番号 {c.receipt_no}】ご相談を受け付けました", "utf-8")
    message["From"] = mail_from
    message["To"] = c.email
    message["Message-ID"] = message_id("acknowledgement", c.consultation_id)
    return message


def _acknowledgement_body(c: Addressee) -> str:
    return f"""{c.consultant_name} 様

{DESK_NAME}です。
ご相談を受け付けました。ご相談いただきありがとうございます。

受付番号: {c.receipt_no}
（お問い合わせの際は、この受付番号をお伝えください）

{japanese_date(c.contact_expected_from)}以降に、担当者からお電話またはメールでご連絡します。
{BUSY if c.contact_may_take_longer else USUALLY}

このメールは送信専用です。
このメールへの返信で、個人情報やご相談の詳しい内容をお送りにならないでください。
詳しいお話は、担当者からご連絡した際にお伺いします。

お電話でのご相談は平日 9:00〜18:00（祝日・年末年始を除く）に受け付けています。
つながりにくい場合は、担当者からのご連絡をお待ちください。

――――
{DESK_NAME}
（このメールにお心当たりのない場合は、お手数ですが破棄してください）
"""


def callback_fallback(c: Addressee, attempts: int, reason: str, mail_from: str, desk_phone: str,
                      desk_hours: str) -> Message:
    """When the desk's calls did not reach the consultant (`reason`, as in callback.exhausted.v1):
    ask them to reply or to call the desk. It says how many calls were made, never why the
    consultant called."""
    if not c.email:
        raise ValueError(f"consultation {c.consultation_id} has no e-mail address to write to")
    wrong_number = reason == "wrong_number"
    subject = "お電話番号をご確認ください" if wrong_number else "お電話がつながりませんでした"
    what_happened = ("お知らせいただいたお電話番号におかけしましたが、番号が違っているようでした。" if wrong_number
                     else f"担当者から{attempts}回お電話しましたが、つながりませんでした。")
    message = MIMEText(_fallback_body(c, what_happened, desk_phone, desk_hours), "plain", "utf-8")
    message["Subject"] = Header(f"【受付番号 {c.receipt_no}】{subject}", "utf-8")
    message["From"] = mail_from
    message["To"] = c.email
    message["Message-ID"] = message_id("callback_fallback", c.consultation_id)
    return message


def _fallback_body(c: Addressee, what_happened: str, desk_phone: str, desk_hours: str) -> str:
    return f"""{c.consultant_name} 様

{DESK_NAME}です。
受付番号 {c.receipt_no} のご相談について、ご連絡いたしました。
{what_happened}

お手数ですが、このメールにご返信いただくか、相談窓口までお電話ください。
ご返信には、つながりやすいお電話番号とご都合のよい日時だけをお書きください。
ご相談の詳しい内容は、担当者がお電話でお伺いします。

相談窓口: {desk_phone}（{desk_hours}、祝日・年末年始を除く）
お電話の際は、受付番号をお伝えください。

――――
{DESK_NAME}
（このメールにお心当たりのない場合は、お手数ですが破棄してください）
"""


# Public lines for what the desk cannot take on; a short list, the same on intake's status page
# (services/intake/templates/ineligible.html).
HELP_LINES = (
    "・脅迫やつきまといなど、身の危険を感じるとき：\n"
    "　警察相談専用電話 #9110（お近くの警察の相談窓口につながります。差し迫った危険があるときは 110番）\n"
    "・インターネット上の誹謗中傷：\n"
    "　法務局「みんなの人権110番」 0570-003-110"
)


def rejection(c: Addressee, mail_from: str, desk_phone: str, desk_hours: str) -> Message:
    """When eligibility could not confirm the consultant (eligibility.rejected.v1, whatever its
    reason): thank them, say why the desk cannot take it on as far as the registry shows, ask them
    to call if it may be a mistake, and point to public help. Never a bare 対象外, never why they
    called."""
    if not c.email:
        raise ValueError(f"consultation {c.consultation_id} has no e-mail address to write to")
    message = MIMEText(_rejection_body(c, desk_phone, desk_hours), "plain", "utf-8")
    message["Subject"] = Header(f"【受付番号 {c.receipt_no}】ご相談の受付についてのお知らせ", "utf-8")
    message["From"] = mail_from
    message["To"] = c.email
    message["Message-ID"] = message_id("rejection", c.consultation_id)
    return message


def _rejection_body(c: Addressee, desk_phone: str, desk_hours: str) -> str:
    return f"""{c.consultant_name} 様

{DESK_NAME}です。
このたびは、相談窓口にご連絡いただき、ありがとうございます。
おつらい状況のなか、ご相談をお寄せくださったことと思います。
受付番号 {c.receipt_no} のご相談について、お知らせいたします。

この窓口は、医師会の会員の方と、会員が開設・管理する医療機関・介護施設で
働く方のための窓口です。
医師会の会員名簿で確認できた範囲では、今回のご相談は、この決まりにより
窓口でお受けすることができませんでした。
お力になれず、申し訳ありません。

名簿の登録内容や、ご入力いただいた内容（会員番号、勤務先の名称など）に
誤りがあることも考えられます。
お心当たりのある場合や、確認をご希望の場合は、お手数ですが相談窓口まで
お電話ください。受付番号をお伝えいただければ、あらためてお調べします。

相談窓口: {desk_phone}（{desk_hours}、祝日・年末年始を除く）

そのほかの相談先
{HELP_LINES}

このメールへのご返信には、ご相談の詳しい内容や個人情報をお書きにならないでください。

――――
{DESK_NAME}
（このメールにお心当たりのない場合は、お手数ですが破棄してください）
"""
