"""Use case: an e-mail that will never reach the consultant (the server refused it for good, or
deferred it too many times) is given up: on record as `failed` with why, and one `bounced` task
for an operator to reach the consultant another way, in one transaction. A redelivery finds
`failed` and does nothing; the task's unique index (per consultation, mail kind and attempt)
backs that up, so there is one task per failed mail, never two.
"""
import logging
from dataclasses import dataclass

from prometheus_client import Counter
from sqlalchemy import bindparam, func, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.orm import notifications
from services.notifier.tasks import TaskOrder, issue

log = logging.getLogger("payhara.notifier")
given_up = Counter("payhara_emails_given_up", "E-mails refused for good or deferred too often, by kind", ["kind"])


@dataclass(frozen=True)
class Bounce:
    copy: Row  # the consultation copy
    attempt: int
    why: str  # codes only, e.g. "refused 550", "deferred 452", "address": never the server's text


async def give_up(session: AsyncConnection, kind: str, bounces: list[Bounce]) -> None:
    """In the caller's transaction: mark these mails failed and give each an operator's task."""
    if not bounces:
        return
    await session.execute(update(notifications).where(
        notifications.c.kind == kind, notifications.c.consultation_id == bindparam("b_id"),
        notifications.c.attempt == bindparam("b_attempt"),
    ).values(status="failed", failed_at=func.now(), handed_over_at=None, failure=bindparam("b_why")), [
        {"b_id": b.copy.consultation_id, "b_attempt": b.attempt, "b_why": b.why} for b in bounces])
    # the mail's kind is the task's reason: the operator sees which message did not arrive
    await issue(session, [(b.copy, TaskOrder(b.copy.consultation_id, "bounced", reason=kind, attempt=b.attempt))
                          for b in bounces])
    given_up.labels(kind).inc(len(bounces))
    for bounce in bounces:
        log.warning("%s e-mail for receipt %s not deliverable (%s): an operator reaches the consultant",
                    kind, bounce.copy.receipt_no, bounce.why)
