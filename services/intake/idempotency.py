"""A submission sent again with the same key (a client's Idempotency-Key, the web form's hidden
submission id) gets the receipt of the first, status code included, for a day.

Why the status code can be shown again although only its hash is kept on the consultation:
the first answer seals it into the key's row with a key derived from the submission key itself,
which the database never holds (only its SHA-256). Whoever sends the same key and the same form
within the day gets it back; a reader of the database, or of a backup, cannot unseal it. The
row goes after a day (`forget_expired`), and with it the sealed code.

Concurrent repeats: the key's row is claimed by INSERT ... ON CONFLICT, so of ten requests at
once one records the consultation and the others wait for its commit, then read its receipt.
"""
import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.intake.forms import ConsultationForm
from services.intake.orm import consultations, submission_keys

KEEP_FOR = timedelta(hours=24)
# printable ASCII, 1 to 200 characters; not beginning or ending with a space, which HTTP drops
KEY_FORMAT = re.compile(r"[\x21-\x7E]([\x20-\x7E]{0,198}[\x21-\x7E])?")
FORGET_AT_ONCE = 500  # expired keys removed per clean-up: each one short and cheap


class SubmissionKeyRefused(ValueError):
    """The key cannot be used: a machine code and a Japanese message a person can act on."""

    code = "idempotency_key"
    message = ""

    def __init__(self):
        super().__init__(self.code)


class MalformedKey(SubmissionKeyRefused):
    code = "idempotency_key_format"
    message = "Idempotency-Key は印字可能なASCII文字1〜200文字で指定してください"


class KeyReused(SubmissionKeyRefused):
    code = "idempotency_key_reused"
    message = "このキーは別の内容の送信に使われています。新しいキーで送信してください"


@dataclass(frozen=True)
class SubmissionKey:
    """What is kept of a key: its hash (the row's identity), the hash of the form it came with,
    and the secret that seals the status code (derived from the key, never stored)."""

    key_hash: bytes
    form_hash: bytes
    sealing_key: bytes

    @classmethod
    def of(cls, key: str, form: ConsultationForm, channel: str) -> "SubmissionKey":
        if not isinstance(key, str) or not KEY_FORMAT.fullmatch(key):
            raise MalformedKey()
        # the form as parsed, so a re-post that differs only in spacing or width is the same
        canonical = json.dumps({"channel": channel, "form": form.model_dump(mode="json")},
                               sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        raw = key.encode("ascii")
        return cls(hashlib.sha256(b"payhara.intake.submission-key\0" + raw).digest(),
                   hashlib.sha256(canonical.encode()).digest(),
                   hmac.new(raw, b"payhara.intake.status-token-seal", hashlib.sha256).digest())

    def seal(self, token: str) -> bytes:
        nonce = secrets.token_bytes(16)
        clear = token.encode()
        return nonce + bytes(a ^ b for a, b in zip(clear, self._stream(nonce, len(clear))))

    def unseal(self, sealed: bytes) -> str:
        nonce, hidden = sealed[:16], sealed[16:]
        return bytes(a ^ b for a, b in zip(hidden, self._stream(nonce, len(hidden)))).decode()

    def _stream(self, nonce: bytes, length: int) -> bytes:
        # HMAC-SHA256 in counter mode as the key stream: a fresh nonce for every code sealed
        blocks = (hmac.new(self.sealing_key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest()
                  for i in range(-(-length // 32)))
        return b"".join(blocks)[:length]


@dataclass(frozen=True)
class EarlierReceipt:
    consultation_id: uuid.UUID
    receipt_no: str
    status_token: str
    received_at: datetime
    contact_expected_from: date
    contact_may_take_longer: bool


async def claim(session: AsyncConnection, key: SubmissionKey, consultation_id: uuid.UUID, token: str,
                at: datetime) -> EarlierReceipt | None:
    """Claim `key` for the consultation about to be recorded in this transaction: None when it is
    ours to record (a new key, one older than a day, or one whose consultation was erased), else
    the receipt given for it. Raises KeyReused when the key came with another form."""
    row = {"key_hash": key.key_hash, "form_hash": key.form_hash, "consultation_id": consultation_id,
           "sealed_status_token": key.seal(token), "created_at": at}
    statement = insert(submission_keys).values(row)
    # waits for a concurrent claim of the same key to commit; either way the key's row is ours
    # (locked) until this transaction ends, which makes the update below safe
    claimed = await session.scalar(statement.on_conflict_do_update(
        index_elements=[submission_keys.c.key_hash], set_={k: statement.excluded[k] for k in row},
        where=submission_keys.c.created_at < at - KEEP_FOR,  # an expired key is a new one
    ).returning(submission_keys.c.key_hash))
    if claimed is not None:
        return None
    c = consultations.c
    earlier = (await session.execute(  # a new statement: it sees the other claim's commit
        select(submission_keys.c.form_hash, submission_keys.c.sealed_status_token, c.id, c.receipt_no,
               c.received_at, c.contact_expected_from, c.contact_may_take_longer)
        .outerjoin(consultations, c.id == submission_keys.c.consultation_id)
        .where(submission_keys.c.key_hash == key.key_hash))).one()
    if earlier.id is None:  # its consultation was erased: the key is free again
        await session.execute(update(submission_keys).where(submission_keys.c.key_hash == key.key_hash).values(row))
        return None
    if not hmac.compare_digest(earlier.form_hash, key.form_hash):
        raise KeyReused()
    return EarlierReceipt(earlier.id, earlier.receipt_no, key.unseal(earlier.sealed_status_token),
                          earlier.received_at, earlier.contact_expected_from, earlier.contact_may_take_longer)


async def forget_expired(session: AsyncConnection, now: datetime) -> int:
    """Remove up to FORGET_AT_ONCE keys older than a day (their sealed codes with them)."""
    oldest = (select(submission_keys.c.key_hash).where(submission_keys.c.created_at < now - KEEP_FOR)
              .order_by(submission_keys.c.created_at).limit(FORGET_AT_ONCE).with_for_update(skip_locked=True))
    gone = await session.execute(
        delete(submission_keys).where(submission_keys.c.key_hash.in_(oldest.scalar_subquery())))
    return gone.rowcount
