"""Use case of the console: keep each e-mail the notifier sent to a consultant
(notification.email_sent.v1) for the consultation's history on its task page, with the time the
notifier sent it (the event's occurred_at), and name it in Japanese."""
import logging

from sqlalchemy.dialects.postgresql import insert

from services.console.orm import emails_sent
from shared import events as ev
from shared.db import Database
from shared.messaging import Delivery

log = logging.getLogger("payhara.console")
# the notifier's kinds (KIND in services/notifier/acknowledging.py, booked.py, declining.py, fallback.py)
EMAIL_LABELS = {"acknowledgement": "受付のお知らせ", "callback_booked": "ご連絡予定のお知らせ",
                "rejection": "対象外のお知らせ", "callback_fallback": "電話がつながらなかったことのお知らせ"}


def email_label(kind: str, attempt: int = 1) -> str:
    """受付のお知らせ; ご連絡予定のお知らせ（2回目） from the second booked call on."""
    label = EMAIL_LABELS.get(kind, f"その他のメール（{kind}）")
    return f"{label}（{attempt}回目）" if attempt > 1 else label


async def keep_emails(deliveries: list[Delivery[ev.EmailSent]], db: Database) -> None:
    """A redelivered event and the same e-mail announced in a new event change nothing: the row's
    primary key (consultation, kind, attempt) is the e-mail's identity, so no inbox is needed. A
    mail that also told another kind (a receipt naming the first call) is kept under both."""
    rows = sorted(({"consultation_id": d.event.consultation_id, "kind": kind, "attempt": attempt,
                    "receipt_no": d.event.receipt_no, "message_id": d.event.message_id,
                    "sent_at": d.envelope.occurred_at}
                   for d in deliveries
                   for kind, attempt in [(d.event.kind, d.event.attempt), *((k, 1) for k in d.event.also_told)]),
                  key=lambda row: (row["consultation_id"], row["kind"], row["attempt"]))
    async with db.begin() as conn:  # in key order: two instances given the same e-mails wait, never deadlock
        kept = (await conn.execute(insert(emails_sent).on_conflict_do_nothing().returning(
            emails_sent.c.receipt_no, emails_sent.c.kind, emails_sent.c.attempt), rows)).all()
    for row in kept:
        log.info("e-mail sent kept: receipt=%s kind=%s attempt=%s", row.receipt_no, row.kind, row.attempt)
