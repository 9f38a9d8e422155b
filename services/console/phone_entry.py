"""Use cases of the phone line: an operator enters a consultation taken on the phone, and waits
for intake's answer to read the receipt number and status code back to the caller.

The status code is a secret of the caller's. The console makes it and sends only its hash; it is
kept in clear in `phone_submissions.status_code` only so the operator can read it out:
- shown only to the operator who entered it, only on the page of an accepted answer;
- erased `console_phone_code_minutes` (10) after that page first showed it (a reload or "could you
  say it again?" works meanwhile), or as many minutes after the answer arrived if no page showed
  it, or at once when the operator marks it read out, or when intake refuses the submission.
What was typed is kept to show the form again on a refusal, and deleted with its row
`console_phone_keep_hours` (24) after the answer (or after the entry, if no answer came)."""
import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row

from services.console.accounts import Operator
from services.console.orm import outbox, phone_answers, phone_submissions
from services.console.phone_form import payload
from services.console.refused import ActionRefused
from services.console.status_codes import code_hash, new_status_code
from shared import events as ev
from shared.db import Database
from shared.outbox import add_event
from shared.settings import Settings

log = logging.getLogger("payhara.console")
PURGE_EVERY_S = 60.0
OTHER_CONTENTS = ("この送信ID（submission_id）で、別の内容がすでに送信されています。"
                  "内容を直して送るときは、新しい送信IDで送ってください。")


async def submit(db: Database, operator: Operator, typed: dict[str, str], now: datetime,
                 submission_id: uuid.UUID | None = None) -> uuid.UUID:
    """Publish the consultation for intake (through the outbox). The same submission id sent again
    (a double click, a telephony system retrying, even at the same moment) is one submission;
    with other contents it is refused (409), since only one of them could ever be answered; an
    id of another operator's is never reused."""
    submission_id = submission_id or uuid.uuid4()
    code = new_status_code()
    async with db.begin() as conn:
        if not await _enter(conn, submission_id, operator, typed, code, now):
            earlier = (await conn.execute(select(phone_submissions.c.operator_id, phone_submissions.c.typed)
                                          .where(phone_submissions.c.submission_id == submission_id))).one()
            if earlier.operator_id == operator.id:
                if earlier.typed != typed:
                    raise ActionRefused("conflict", OTHER_CONTENTS)
                return submission_id  # sent already: the same call, the same answer
            submission_id = uuid.uuid4()
            await _enter(conn, submission_id, operator, typed, code, now)
        await add_event(conn, outbox, ev.ConsultationSubmitted(
            submission_id=submission_id, channel="phone", operator_id=operator.ref, submitted_at=now,
            status_token_hash=code_hash(code), form=payload(typed)), submission_id)
    log.info("phone consultation entered: submission=%s operator=%s", submission_id, operator.id)
    return submission_id


async def _enter(conn, submission_id: uuid.UUID, operator: Operator, typed: dict, code: str, now: datetime) -> bool:
    """The entry's row, unless the id is taken (a concurrent repeat waits here for the first's commit)."""
    return (await conn.execute(insert(phone_submissions).values(
        submission_id=submission_id, operator_id=operator.id, typed=typed, status_code=code, submitted_at=now)
        .on_conflict_do_nothing())).rowcount == 1


@dataclass(frozen=True)
class PhoneStatus:
    submission_id: uuid.UUID
    typed: dict
    answer: Row | None  # None: intake has not answered yet
    code: str | None  # the status code to read out, while it may be shown
    code_until: datetime | None
    submitted_at: datetime

    @property
    def state(self) -> str:
        if self.answer is None:
            return "waiting"
        return "accepted" if self.answer.receipt_no is not None else "refused"


async def status(db: Database, submission_id: uuid.UUID, operator: Operator, now: datetime,
                 code_minutes: int) -> PhoneStatus:
    async with db.begin() as conn:
        row = (await conn.execute(select(phone_submissions).where(
            phone_submissions.c.submission_id == submission_id,
            phone_submissions.c.operator_id == operator.id))).first()  # another's entry: not found
        if row is None:
            raise ActionRefused("not_found")
        answer = (await conn.execute(
            select(phone_answers).where(phone_answers.c.submission_id == submission_id))).first()
        code, until = None, None
        if answer is not None and row.status_code is not None:
            until = _shown_from(row, answer, now, code_minutes) + timedelta(minutes=code_minutes)
            if answer.receipt_no is None or until <= now:  # refused, or past its time: never shown again
                await _erase_code(conn, phone_submissions.c.submission_id == submission_id)
                until = None
            else:
                code = row.status_code
                if row.code_shown_at is None:
                    await conn.execute(update(phone_submissions).where(
                        phone_submissions.c.submission_id == submission_id).values(code_shown_at=now))
    return PhoneStatus(submission_id, row.typed, answer, code, until, row.submitted_at)


def _shown_from(row: Row, answer: Row, now: datetime, code_minutes: int) -> datetime:
    """When the code's time to be shown began: its first showing; else the answer's arrival,
    when that is already too long ago; else now (this is its first showing)."""
    if row.code_shown_at is not None:
        return row.code_shown_at
    if answer.answered_at < now - timedelta(minutes=code_minutes):
        return answer.answered_at
    return now


async def code_read_out(db: Database, submission_id: uuid.UUID, operator: Operator) -> None:
    """The operator read the code out: it is erased now."""
    async with db.begin() as conn:
        await _erase_code(conn, (phone_submissions.c.submission_id == submission_id)
                          & (phone_submissions.c.operator_id == operator.id))


async def _erase_code(conn, condition) -> int:
    return (await conn.execute(update(phone_submissions).where(condition, phone_submissions.c.status_code.is_not(None))
                               .values(status_code=None))).rowcount


async def purge(db: Database, now: datetime, settings: Settings) -> tuple[int, int]:
    """(codes erased, entries deleted) by the rules above."""
    shown_limit = now - timedelta(minutes=settings.console_phone_code_minutes)
    keep_limit = now - timedelta(hours=settings.console_phone_keep_hours)
    answered = select(phone_answers.c.answered_at, phone_answers.c.receipt_no).where(
        phone_answers.c.submission_id == phone_submissions.c.submission_id).correlate(phone_submissions)
    async with db.begin() as conn:
        erased = await _erase_code(conn, or_(
            phone_submissions.c.code_shown_at < shown_limit,
            answered.where(phone_answers.c.receipt_no.is_(None)).exists(),
            phone_submissions.c.code_shown_at.is_(None) & answered.where(
                phone_answers.c.answered_at < shown_limit).exists()))
        deleted = (await conn.execute(delete(phone_submissions).where(
            func.coalesce(answered.with_only_columns(phone_answers.c.answered_at).scalar_subquery(),
                          phone_submissions.c.submitted_at) < keep_limit))).rowcount
    return erased, deleted


async def purge_forever(db: Database, settings: Settings, clock: Callable[[], datetime]) -> None:
    """Alongside the console: status codes and phone entries are not kept past their time."""
    while True:
        try:
            erased, deleted = await purge(db, clock(), settings)
            if erased or deleted:
                log.info("phone purge: %s status codes erased, %s entries deleted", erased, deleted)
        except Exception as error:  # the database away: try again next round
            log.warning("phone purge failed: %s", type(error).__name__)
        await asyncio.sleep(PURGE_EVERY_S)
