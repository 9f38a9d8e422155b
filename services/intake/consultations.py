"""Use cases of intake: take a consultation in, show its status, follow its progress."""
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.intake import idempotency, post_urls, receipts
from services.intake.forms import ConsultationForm
from services.intake.idempotency import SubmissionKey
from services.intake.orm import availability, consultations, inbox, outbox, receipt_numbers
from services.intake.promise import promised
from shared import events as ev
from shared.calendar import first_contact_day, japanese_date, japanese_slot
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.outbox import add_event

log = logging.getLogger("payhara.intake")


@dataclass(frozen=True)
class Receipt:
    consultation_id: uuid.UUID
    receipt_no: str
    status_token: str
    received_at: datetime
    contact_expected_from: date
    contact_may_take_longer: bool = False
    repeated: bool = False  # the receipt of an earlier submission sent with the same key


class ReceiptSerials:
    """Serials for receipt numbers, taken from the database sequence a block at a time: one
    statement per BLOCK receipts instead of one each. Numbers a process held when it stopped
    are skipped, as a sequence's numbers are on a rollback; each is still used at most once."""

    BLOCK = 16

    def __init__(self):
        self._free: list[int] = []

    async def next(self, session) -> int:
        if not self._free:
            self._free.extend(reversed(await take_serials(session, self.BLOCK)))
        return self._free.pop()


class FirstFreeDay:
    """The scheduler's first free day as intake last heard it (for calls, or for replies by
    e-mail), read at most once a second per process: a query saved per receipt under load, and a
    second's lag is what the scheduler's margin of seats is there to absorb
    (services/scheduler/availability.py)."""

    TTL_S = 1.0

    def __init__(self):
        self._days: dict[str, date | None] = {}
        self._read_at = float("-inf")

    async def read(self, session, contact_method: str = "phone") -> date | None:
        if time.monotonic() - self._read_at > self.TTL_S:
            row = (await session.execute(select(availability.c.first_free_day,
                                                availability.c.first_free_email_day))).first()
            self._days = {"phone": row.first_free_day, "email": row.first_free_email_day} if row else {}
            self._read_at = time.monotonic()
        return self._days.get(contact_method)


async def take_serials(session, count: int) -> list[int]:
    """`count` serials for receipt numbers in one statement, in increasing order."""
    return sorted(await session.scalars(
        select(receipt_numbers.next_value()).select_from(func.generate_series(1, count))))


def consultation_row(consultation_id: uuid.UUID, receipt_no: str, token_hash: bytes, channel: str,
                     received_at: datetime, promise, form: ConsultationForm,
                     submission_id: uuid.UUID | None = None) -> dict:
    c, i, k = form.consultant, form.institution, form.contact
    return dict(
        id=consultation_id, receipt_no=receipt_no, status_token_hash=token_hash, channel=channel,
        received_at=received_at, contact_expected_from=promise.day,
        consultant_name=c.name, consultant_name_kana=c.name_kana, role=c.role, member_no=c.member_no,
        institution_name=i.name, institution_prefecture=i.prefecture, manager_member_no=i.manager_member_no,
        contact_method=k.method, phone=k.phone, email=k.email,
        category=form.category, summary=form.summary, urls=form.urls, status="received",
        contact_may_take_longer=promise.may_take_longer, submission_id=submission_id,
    )


def received_event(row: dict, form: ConsultationForm) -> ev.ConsultationReceived:
    """The `received` event of a consultation row as consultation_row gives it from `form`."""
    return ev.ConsultationReceived(
        consultation_id=row["id"], receipt_no=row["receipt_no"], channel=row["channel"],
        received_at=row["received_at"], contact_expected_from=row["contact_expected_from"],
        consultant=ev.Consultant(name=row["consultant_name"], name_kana=row["consultant_name_kana"],
                                 role=row["role"], member_no=row["member_no"]),
        institution=ev.InstitutionInfo(name=row["institution_name"], prefecture=row["institution_prefecture"],
                                       manager_member_no=row["manager_member_no"]),
        contact=ev.Contact(method=row["contact_method"], phone=row["phone"], email=row["email"]),
        category=row["category"], summary=row["summary"], urls=row["urls"],
        posts=[ev.PostRef(url=url, platform=post_urls.platform_of(url)) for url in row["urls"]],
        contact_may_take_longer=row["contact_may_take_longer"], urgent=form.urgent, preferred_time=form.preferred_time,
        submission_id=row["submission_id"],
    )


async def submit(form: ConsultationForm, channel: str, sessions: Database, serials: ReceiptSerials,
                 first_free: FirstFreeDay | None = None, key: SubmissionKey | None = None) -> Receipt:
    """Record the consultation and its `received` event in one transaction; the receipt is
    returned only after the commit, so a receipt that was shown is never lost. With a key, a
    repeat within the day gets the first receipt (services/intake/idempotency.py)."""
    received_at = datetime.now(timezone.utc)
    consultation_id = uuid.uuid4()
    token, token_hash = receipts.new_status_token()
    async with sessions.begin() as session:
        if key is not None:
            earlier = await idempotency.claim(session, key, consultation_id, token, received_at)
            if earlier is not None:
                log.info("submission repeated: receipt=%s id=%s", earlier.receipt_no, earlier.consultation_id)
                return Receipt(**vars(earlier), repeated=True)
        first_free_day = await (first_free or FirstFreeDay()).read(session, form.contact.method)
        promise = promised(first_contact_day(received_at), first_free_day)
        receipt_no = receipts.receipt_no(await serials.next(session), received_at)
        row = consultation_row(consultation_id, receipt_no, token_hash, channel, received_at, promise, form)
        await session.execute(insert(consultations), row)
        await add_event(session, outbox, received_event(row, form), consultation_id)
    log.info("consultation received: receipt=%s id=%s channel=%s", receipt_no, consultation_id, channel)
    return Receipt(consultation_id, receipt_no, token, received_at, promise.day, promise.may_take_longer)


class Submissions:
    """What every entry point submits through, one per process: the database, the receipt serials
    and the scheduler's first free day as last read."""

    FORGET_EVERY_S = 60.0  # expired submission keys are removed at most this often per process

    def __init__(self, sessions: Database):
        self.sessions = sessions
        self.serials = ReceiptSerials()
        self.first_free = FirstFreeDay()
        self._forgot_at = float("-inf")

    async def submit(self, form: ConsultationForm, channel: str, submission_key: str | None = None) -> Receipt:
        """`submission_key`: the client's Idempotency-Key or the web form's submission id; raises
        SubmissionKeyRefused (MalformedKey, KeyReused) when it cannot be used."""
        key = None if submission_key is None else SubmissionKey.of(submission_key, form, channel)
        receipt = await submit(form, channel, self.sessions, self.serials, self.first_free, key)
        if key is not None and time.monotonic() - self._forgot_at > self.FORGET_EVERY_S:
            self._forgot_at = time.monotonic()
            await self._forget_expired_keys()
        return receipt

    async def _forget_expired_keys(self) -> None:
        try:  # the receipt is committed: a failed clean-up must not hide it, the next one catches up
            async with self.sessions.begin() as session:
                await idempotency.forget_expired(session, datetime.now(timezone.utc))
        except Exception as error:
            log.warning("expired submission keys not removed: %s", type(error).__name__)


async def status_of(receipt_no: str, token: str | None, sessions: Database) -> dict | None:
    """The consultant's view of their receipt, or None when the receipt or token is wrong
    (the caller cannot tell which). The number may be typed in full width, with spaces."""
    receipt_no = receipts.typed_receipt_no(receipt_no)
    if not receipts.is_well_formed(receipt_no):
        return None
    async with sessions() as session:
        row = (await session.execute(select(consultations).where(consultations.c.receipt_no == receipt_no))).first()
    if not receipts.token_matches(token, row.status_token_hash if row is not None else None):
        return None
    slot = None
    if row.slot_starts_at is not None:
        slot = {"starts_at": row.slot_starts_at.isoformat(), "ends_at": row.slot_ends_at.isoformat(),
                "label": japanese_slot(row.slot_starts_at, row.slot_ends_at)}
    return {
        "receipt_no": row.receipt_no,
        "status": row.status,
        "status_label": receipts.STATUS_LABELS_JA[row.status],
        "received_at": row.received_at.isoformat(),
        "contact_expected_from": row.contact_expected_from.isoformat(),
        "contact_expected_label": japanese_date(row.contact_expected_from),
        "contact_may_take_longer": row.contact_may_take_longer,
        "slot": slot,
        "acknowledgement_sent_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
    }


async def follow(deliveries: list[Delivery], status: str, sessions: Database, consumer: str,
                 slot: Callable[[ev.Event], dict] | None = None) -> None:
    """Move the consultant-facing status forward on verdict or schedule events (each once); a
    later call attempt's schedule replaces the earlier slot."""
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, consumer, deliveries)
        if not fresh:
            return
        ids = sorted({d.event.consultation_id for d in fresh})  # one lock order for every instance
        current = {row.id: (row.status, row.attempt) for row in (await session.execute(
            select(consultations.c.id, consultations.c.status, consultations.c.attempt)
            .where(consultations.c.id.in_(ids)).order_by(consultations.c.id).with_for_update()
        )).all()}
        now, changes = datetime.now(timezone.utc), []
        for d in fresh:
            cid = d.event.consultation_id
            attempt = getattr(d.event, "attempt", None) if slot else None
            if cid not in current:
                log.error("status event %s for unknown consultation %s", d.envelope.event_id, cid)
            elif receipts.advances(current[cid][0], status, current[cid][1], attempt or current[cid][1]):
                current[cid] = (status, attempt or current[cid][1])
                changes.append({"b_id": cid, "status": status, "status_changed_at": now, "attempt": current[cid][1],
                                **(slot(d.event) if slot else {})})
        if changes:
            await session.execute(
                update(consultations).where(consultations.c.id == bindparam("b_id")), changes)


async def note_acknowledgements(deliveries: list[Delivery[ev.EmailSent]], sessions: Database) -> None:
    """Remember when each acknowledgement e-mail went out, for the consultant's status view."""
    acknowledgements = [d for d in deliveries if d.event.kind == "acknowledgement"]
    if not acknowledgements:
        return
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, "intake.email_sent", acknowledgements)
        if fresh:
            await session.execute(
                update(consultations).where(consultations.c.id == bindparam("b_id")),
                [{"b_id": d.event.consultation_id, "acknowledged_at": d.envelope.occurred_at}
                 for d in sorted(fresh, key=lambda d: d.event.consultation_id)])


async def note_availability(deliveries: list[Delivery[ev.ScheduleAvailabilityChanged]], sessions: Database) -> None:
    """Keep the scheduler's latest word on availability; an older or repeated one changes nothing."""
    latest = max(deliveries, key=lambda d: d.event.as_of).event
    row = {"id": 1, "first_free_day": latest.first_free_day, "first_free_email_day": latest.first_free_email_day,
           "busy": latest.busy, "as_of": latest.as_of}
    statement = pg_insert(availability).values(row)
    async with sessions.begin() as session:
        await session.execute(statement.on_conflict_do_update(
            index_elements=[availability.c.id], set_={k: statement.excluded[k] for k in row if k != "id"},
            where=availability.c.as_of < statement.excluded.as_of))
