"""Pure rules of a receipt: its number, its secret status token and how its status moves."""
import hashlib
import hmac
import re
import secrets
from datetime import datetime

from shared.calendar import japan_date

RECEIPT_PATTERN = re.compile(r"PH-\d{6}-\d{5,}")

STATUS_LABELS_JA = {
    "received": "受付済み",
    "under_review": "確認中",
    "eligible": "ご相談の対象として確認済み",
    # never a bare 対象外: the status page and the e-mail explain, and say how to have it checked
    "ineligible": "ご相談の対象として確認できませんでした",
    "scheduled": "ご連絡日時が決まりました",
    "unreachable": "お電話でご連絡できませんでした",
}
# A status only moves forward, so an event that arrives late never undoes a newer one.
_RANK = {"received": 0, "under_review": 1, "eligible": 2, "ineligible": 2, "scheduled": 3, "unreachable": 4}


def check_digit(digits: str) -> int:
    """Luhn check digit, so a receipt number read out over the phone with a typo is caught."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10


def receipt_no(sequence: int, received_at: datetime) -> str:
    day = japan_date(received_at).strftime("%y%m%d")
    serial = f"{sequence:04d}"
    return f"PH-{day}-{serial}{check_digit(day + serial)}"


def is_well_formed(receipt: str) -> bool:
    if not RECEIPT_PATTERN.fullmatch(receipt):
        return False
    digits = receipt[3:9] + receipt[10:-1]
    return check_digit(digits) == int(receipt[-1])


def new_status_token() -> tuple[str, bytes]:
    token = secrets.token_urlsafe(24)
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_matches(token: str | None, stored_hash: bytes) -> bool:
    return token is not None and hmac.compare_digest(hash_token(token), stored_hash)


def advances(current: str, new: str, current_attempt: int = 1, new_attempt: int = 1) -> bool:
    """Statuses only move forward; a call's next attempt moves `scheduled` on to its new slot."""
    return (_RANK[new], new_attempt) > (_RANK[current], current_attempt)
