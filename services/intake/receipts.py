"""Pure rules of a receipt: its number, its secret status code and how its status moves."""
import hashlib
import hmac
import re
import secrets
import unicodedata
from datetime import datetime

from stdnum import damm

from shared.calendar import japan_date

# PH-<Japan date YYMMDD>-<serial of 4 digits or more><check digit>, e.g. PH-261130-02578
RECEIPT_PATTERN = re.compile(r"PH-[0-9]{6}-[0-9]{5,}")
# The status code a consultant reads out or types: Crockford's base32 (no I, L, O, U), 12 of them
# for 60 bits, shown in groups of four (7K3M-Q9XD-F2HT). Read back, O counts as 0 and I, L as 1.
STATUS_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
STATUS_CODE_LENGTH = 12
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
# what a consultant may type between the groups: spaces of any width and hyphens, dashes, the
# long-vowel mark and minus signs (full-width ones fold to these under NFKC)
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\u30FC]+")
_NO_RECEIPT = bytes(32)  # compared against when there is no receipt, so that costs the same

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
    """Damm's check digit: catches every mistyped digit and every swap of two neighbours, so a
    receipt number read out over the phone with a typo finds no receipt."""
    return int(damm.calc_check_digit(digits))


def receipt_no(sequence: int, received_at: datetime) -> str:
    day = japan_date(received_at).strftime("%y%m%d")
    serial = f"{sequence:04d}"
    return f"PH-{day}-{serial}{check_digit(day + serial)}"


def is_well_formed(receipt: str) -> bool:
    return bool(RECEIPT_PATTERN.fullmatch(receipt)) and damm.is_valid(receipt[3:9] + receipt[10:])


def typed_receipt_no(typed: str | None) -> str:
    """A receipt number as typed ('ｐｈ－２６１１３０－０２５７８ ') in the form it is stored."""
    folded = unicodedata.normalize("NFKC", typed or "").upper()
    return _SEPARATORS.sub("-", folded.strip())


def new_status_token() -> tuple[str, bytes]:
    """A new status code as shown to the consultant, and the hash that is stored."""
    code = "".join(secrets.choice(STATUS_ALPHABET) for _ in range(STATUS_CODE_LENGTH))
    shown = "-".join(code[i:i + 4] for i in range(0, STATUS_CODE_LENGTH, 4))
    return shown, hash_token(shown)


def status_code_key(typed: str) -> str:
    """A status code as typed, in any case or width, with or without separators: its 12 characters."""
    folded = unicodedata.normalize("NFKC", typed).upper().translate(_READ_AS)
    return _SEPARATORS.sub("", folded)


def hash_token(token: str) -> bytes:
    # a plain hash is enough for 60 random bits that guard only what the same table holds
    return hashlib.sha256(status_code_key(token).encode("utf-8", "surrogatepass")).digest()


def token_matches(token: str | None, stored_hash: bytes | None) -> bool:
    """Whether the code typed is the receipt's; a missing receipt (None) costs the same hash and
    comparison as a wrong code, so neither the answer nor its time tells them apart."""
    matches = hmac.compare_digest(hash_token(token or ""), stored_hash or _NO_RECEIPT)
    return matches and bool(token) and stored_hash is not None


def advances(current: str, new: str, current_attempt: int = 1, new_attempt: int = 1) -> bool:
    """Statuses only move forward; a call's next attempt moves `scheduled` on to its new slot."""
    return (_RANK[new], new_attempt) > (_RANK[current], current_attempt)
