"""The status code a consultant entered on the phone uses to look up their receipt, made here as
intake makes a web receipt's (services/intake/receipts.py; tests check the two agree): 12
characters of Crockford's base32 (no I, L, O, U: 60 bits), shown in groups of four
(7K3M-Q9XD-F2HT). Only the hex SHA-256 of its canonical form travels to intake."""
import hashlib
import re
import secrets
import unicodedata

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 12
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})  # read back, O is 0 and I, L are 1
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\u30FC]+")


def new_status_code() -> str:
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(code[i:i + 4] for i in range(0, LENGTH, 4))


def canonical(code: str) -> str:
    """A code as typed, in any case or width, with or without separators: its 12 characters."""
    folded = unicodedata.normalize("NFKC", code).upper().translate(_READ_AS)
    return _SEPARATORS.sub("", folded)


def code_hash(code: str) -> str:
    """What consultation.submitted.v1 carries as status_token_hash."""
    return hashlib.sha256(canonical(code).encode("utf-8", "surrogatepass")).hexdigest()
