"""Use case of eligibility: judge a received consultation against the member registry, once."""
import logging

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.eligibility import verdicts as rules
from services.eligibility.orm import inbox, institutions, members, outbox, verdicts
from services.eligibility.registry_csv import normalize_member_no
from shared import events as ev
from shared.db import Database
from shared.inbox import first_delivery
from shared.outbox import add_event

log = logging.getLogger("payhara.eligibility")
CONSUMER = "eligibility.judge"


async def judge(event: ev.ConsultationReceived, envelope: ev.Envelope, sessions: Database) -> None:
    """Verdict row, inbox row and the verdict's event in one transaction."""
    applicant = rules.Applicant(
        role=event.consultant.role,
        member_no=event.consultant.member_no,
        institution_name=event.institution.name,
        institution_prefecture=event.institution.prefecture,
        manager_member_no=event.institution.manager_member_no,
    )
    async with sessions.begin() as session:
        if not await first_delivery(session, inbox, CONSUMER, envelope.event_id):
            return
        if await session.scalar(
            select(verdicts.c.consultation_id).where(verdicts.c.consultation_id == event.consultation_id)
        ) is not None:
            log.info("already judged: receipt=%s", event.receipt_no)  # published twice by intake
            return
        member, linked = await _registry_for(session, _number_that_matters(applicant))
        verdict = rules.decide(applicant, member, linked)
        inserted = await session.execute(
            upsert(verdicts).values(
                consultation_id=event.consultation_id, receipt_no=event.receipt_no,
                outcome=verdict.outcome.value, reason=verdict.reason,
                basis_member_no=verdict.basis_member_no, institution_id=verdict.institution_id,
            ).on_conflict_do_nothing().returning(verdicts.c.consultation_id)
        )
        if inserted.first() is None:
            return  # a concurrent delivery of another copy won the race
        await add_event(session, outbox, _event_for(event, verdict), event.consultation_id)
    log.info("verdict: receipt=%s outcome=%s reason=%s", event.receipt_no, verdict.outcome.value, verdict.reason)


def _number_that_matters(applicant: rules.Applicant) -> str | None:
    given = applicant.member_no if applicant.role == "member" else applicant.manager_member_no
    return normalize_member_no(given) or None if given else None


async def _registry_for(session: AsyncConnection, number: str | None
                        ) -> tuple[rules.Member | None, list[rules.Institution]]:
    """The member row for `number` and the institutions it founded or manages."""
    if number is None:
        return None, []
    row = (await session.execute(select(members).where(members.c.member_no == number))).first()
    member = rules.Member(row.member_no, row.status, row.prefecture) if row else None
    rows = (await session.execute(
        select(institutions).where(or_(institutions.c.founder_member_no == number,
                                       institutions.c.manager_member_no == number))
        .order_by(institutions.c.institution_id)
    )).all()
    linked = [rules.Institution(r.institution_id, r.name, r.kind, r.prefecture,
                                r.founder_member_no, r.manager_member_no) for r in rows]
    return member, linked


def _event_for(event: ev.ConsultationReceived, verdict: rules.Verdict) -> ev.Event:
    common = {"consultation_id": event.consultation_id, "receipt_no": event.receipt_no, "reason": verdict.reason}
    if verdict.outcome is rules.Outcome.CONFIRMED:
        return ev.EligibilityConfirmed(**common, contact_expected_from=event.contact_expected_from)
    if verdict.outcome is rules.Outcome.REJECTED:
        return ev.EligibilityRejected(**common)
    return ev.EligibilityReviewRequested(**common)
