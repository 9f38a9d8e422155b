"""Operators' decisions on the real database and broker: a consultation under review is confirmed or
rejected by the first decision, published once with the operator as its source, whatever is
redelivered or decided at the same time; any other decision is kept, not applied, and says why."""
import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import aio_pika
from sqlalchemy import func, select

from services.eligibility import handlers
from services.eligibility.decisions import CONSUMER
from services.eligibility.orm import decisions, inbox, outbox
from services.eligibility.verdicting import judge
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Consumers, Delivery
from shared.topology import queue_name
from tests.support import publish_envelopes
from tests.integration.test_eligibility import demo_registry, received, sessions  # noqa: F401 (fixtures)

FINAL = ("eligibility.confirmed.v1", "eligibility.rejected.v1")


def decision(consultation: Delivery, operator: str, what: str, reason: str = "checked_by_phone",
             at: datetime | None = None) -> Delivery[ev.EligibilityDecided]:
    event = ev.EligibilityDecided(
        consultation_id=consultation.event.consultation_id, receipt_no=consultation.event.receipt_no,
        operator_id=operator, decision=what, reason=reason, decided_at=at or datetime.now(timezone.utc))
    return Delivery(ev.wrap(event, event.consultation_id), event)


async def under_review(sessions, **urgency) -> Delivery[ev.ConsultationReceived]:
    """A member whose number the registry does not know: judged, and sent to review."""
    delivery = received("member", "M0020", ("架空 花子", "かくう はなこ"))
    delivery = Delivery(delivery.envelope, delivery.event.model_copy(update=urgency))
    await judge([delivery], sessions)
    return delivery


async def finals(sessions, consultation: Delivery) -> list[ev.Event]:
    async with sessions() as s:
        rows = (await s.execute(select(outbox).where(outbox.c.correlation_id == consultation.event.consultation_id,
                                                     outbox.c.routing_key.in_(FINAL)).order_by(outbox.c.id))).all()
    kinds = {e.routing_key: e for e in (ev.EligibilityConfirmed, ev.EligibilityRejected)}
    return [kinds[r.routing_key].model_validate(ev.Envelope.model_validate_json(r.body).data) for r in rows]


async def kept(sessions, consultation: Delivery) -> list[tuple]:
    async with sessions() as s:
        return [tuple(r) for r in (await s.execute(
            select(decisions.c.operator_id, decisions.c.decision, decisions.c.applied, decisions.c.why_not_applied)
            .where(decisions.c.consultation_id == consultation.event.consultation_id)
            .order_by(decisions.c.decided_at))).all()]


async def test_a_confirmation_by_an_operator_is_published_with_what_the_scheduler_books_by(demo_registry):
    consultation = await under_review(demo_registry, urgent=True, preferred_time="morning")
    await handlers.decide([decision(consultation, "op-sato", "confirm", "member_no_typo")], demo_registry)
    (confirmed,) = await finals(demo_registry, consultation)
    assert isinstance(confirmed, ev.EligibilityConfirmed)
    assert (confirmed.decided_by, confirmed.reason, confirmed.receipt_no) == (
        "op-sato", "member_no_typo", consultation.event.receipt_no)
    assert (confirmed.contact_expected_from, confirmed.urgent, confirmed.preferred_time, confirmed.contact_method) == (
        consultation.event.contact_expected_from, True, "morning", "email")


async def test_a_rejection_by_an_operator_is_published_once_even_when_redelivered(demo_registry):
    consultation = await under_review(demo_registry)
    rejection = decision(consultation, "op-sato", "reject", "not_a_member")
    await handlers.decide([rejection, rejection], demo_registry)
    await handlers.decide([rejection], demo_registry)
    (rejected,) = await finals(demo_registry, consultation)
    assert isinstance(rejected, ev.EligibilityRejected)
    assert (rejected.decided_by, rejected.reason) == ("op-sato", "not_a_member")
    assert await kept(demo_registry, consultation) == [("op-sato", "reject", True, None)]


async def test_of_two_decisions_in_one_batch_the_first_taken_wins_and_the_second_is_kept_unapplied(demo_registry):
    consultation = await under_review(demo_registry)
    now = datetime.now(timezone.utc)
    later = decision(consultation, "op-suzuki", "reject", "not_a_member", at=now + timedelta(seconds=3))
    first = decision(consultation, "op-sato", "confirm", "member_no_typo", at=now)
    await handlers.decide([later, first], demo_registry)
    (final,) = await finals(demo_registry, consultation)
    assert (type(final), final.decided_by) == (ev.EligibilityConfirmed, "op-sato")
    assert await kept(demo_registry, consultation) == [
        ("op-sato", "confirm", True, None), ("op-suzuki", "reject", False, "already_decided")]


async def test_two_operators_deciding_at_once_on_two_instances_give_one_final_verdict(demo_registry, desk):
    engines = [make_engine(desk, pool_size=2) for _ in range(2)]
    try:
        for _ in range(5):
            consultation = await under_review(demo_registry)
            await asyncio.gather(
                handlers.decide([decision(consultation, "op-sato", "confirm")], make_sessions(engines[0])),
                handlers.decide([decision(consultation, "op-suzuki", "reject")], make_sessions(engines[1])))
            (final,) = await finals(demo_registry, consultation)
            decided = await kept(demo_registry, consultation)
            assert sorted(applied for _, _, applied, _ in decided) == [False, True]
            assert [op for op, _, applied, _ in decided if applied] == [final.decided_by]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_decision_on_a_consultation_not_under_review_is_not_applied(demo_registry):
    confirmed = received("member", "M0001")
    await judge([confirmed], demo_registry)
    never_judged = received("member", "M0002")
    await handlers.decide([decision(confirmed, "op-sato", "reject"), decision(never_judged, "op-sato", "confirm")],
                          demo_registry)
    assert len(await finals(demo_registry, confirmed)) == 1  # the registry's own confirmation only
    assert (await finals(demo_registry, confirmed))[0].decided_by is None
    assert await finals(demo_registry, never_judged) == []
    assert await kept(demo_registry, confirmed) == [("op-sato", "reject", False, "not_under_review")]
    assert await kept(demo_registry, never_judged) == [("op-sato", "confirm", False, "unknown_consultation")]


def test_a_decision_carries_a_reason_code_never_free_text():
    for reason in ("電話で確認済み", "Checked", "a b", "", "x" * 65):
        try:
            ev.EligibilityDecided(consultation_id=uuid.uuid4(), receipt_no="PH-261129-00001", operator_id="op",
                                  decision="confirm", reason=reason, decided_at=datetime.now(timezone.utc))
        except ValueError:
            continue
        raise AssertionError(f"{reason!r} accepted as a reason code")


async def test_the_decision_round_trip_on_the_real_broker(demo_registry, desk):
    # the relay published one decision twice (same event id); a second operator decided too
    consultation = await under_review(demo_registry)
    now = datetime.now(timezone.utc)
    first = decision(consultation, "op-sato", "confirm", at=now)
    second = decision(consultation, "op-suzuki", "reject", at=now + timedelta(seconds=1))
    consumers = Consumers(desk, "eligibility")
    consumers.include(handlers.subscriptions, demo_registry)
    connection = await aio_pika.connect(desk.amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await (await channel.get_queue(queue_name("eligibility", ev.EligibilityDecided))).purge()
        await consumers.start()
        await publish_envelopes(channel, (first.envelope, first.envelope, second.envelope),
                                ev.EligibilityDecided.routing_key)
        for _ in range(200):  # both event ids handled
            async with demo_registry() as s:
                if await s.scalar(select(func.count()).select_from(inbox).where(inbox.c.consumer == CONSUMER,
                        inbox.c.event_id.in_([first.envelope.event_id, second.envelope.event_id]))) == 2:
                    break
            await asyncio.sleep(0.05)
    finally:
        await consumers.stop()
        await connection.close()
    (final,) = await finals(demo_registry, consultation)
    assert (type(final), final.decided_by) == (ev.EligibilityConfirmed, "op-sato")
    assert [applied for _, _, applied, _ in await kept(demo_registry, consultation)] == [True, False]
