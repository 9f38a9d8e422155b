"""The phone channel on the real database and broker: a submission from the console becomes a
receipt (channel phone) whose `received` event names the submission, or a refusal with the web
form's reasons and nothing recorded; once, whatever is redelivered or published again; a
message that cannot be read goes to the DLQ; a batch costs a fixed number of statements."""
import asyncio
import time
import uuid
from datetime import datetime, timezone

import aio_pika
import pytest
from sqlalchemy import event, func, select, text

from services.intake import handlers, receipts
from services.intake.consultations import status_of
from services.intake.orm import consultations, inbox, outbox
from services.intake.phone import CONSUMER, take_phone_submissions
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Consumers, Delivery
from shared.topology import dead_letter_queue_name, queue_name
from tests.integration.test_intake import SUBMISSION
from tests.support import publish_envelopes

QUEUE = queue_name("intake", ev.ConsultationSubmitted)
BY_PHONE = dict(SUBMISSION, contact={"method": "phone", "phone": "03-1234-5678"})


@pytest.fixture
async def sessions(desk):
    engine = make_engine(desk)
    async with engine.begin() as conn:
        await conn.execute(text("truncate intake.consultations, intake.outbox, intake.inbox"))
    yield make_sessions(engine)
    await engine.dispose()


def submitted(form: dict, submission_id: uuid.UUID | None = None) -> tuple[Delivery[ev.ConsultationSubmitted], str]:
    """What the console publishes, and the status code it showed the operator (never sent)."""
    token, token_hash = receipts.new_status_token()
    event = ev.ConsultationSubmitted(
        submission_id=submission_id or uuid.uuid4(), channel="phone", operator_id="op-sato",
        submitted_at=datetime.now(timezone.utc), status_token_hash=token_hash.hex(), form=form)
    return Delivery(ev.wrap(event, event.submission_id), event), token


async def outcomes(sessions, routing_key: str, event_type: type[ev.Event]) -> list:
    async with sessions() as s:
        bodies = (await s.scalars(select(outbox.c.body).where(outbox.c.routing_key == routing_key)
                                  .order_by(outbox.c.id))).all()
    return [event_type.model_validate(ev.Envelope.model_validate_json(b).data) for b in bodies]


async def through_the_broker(desk, sessions, envelopes: list[ev.Envelope], handled: int) -> float:
    """Run intake's consumers, publish `envelopes` as the relay would, and wait until `handled`
    distinct events are in the inbox; returns the seconds it took."""
    consumers = Consumers(desk, "intake")
    consumers.include(handlers.subscriptions, sessions)
    connection = await aio_pika.connect(desk.amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await (await channel.get_queue(QUEUE)).purge()
        await consumers.start()
        started = time.monotonic()
        await publish_envelopes(channel, envelopes, ev.ConsultationSubmitted.routing_key)
        for _ in range(200):
            async with sessions() as s:
                done = await s.scalar(select(func.count()).select_from(inbox).where(inbox.c.consumer == CONSUMER))
            if done >= handled:
                return time.monotonic() - started
            await asyncio.sleep(0.05)
        raise AssertionError(f"fewer than {handled} submissions handled within 10 s")
    finally:
        await consumers.stop()
        await connection.close()


async def test_a_phone_submission_gets_a_receipt_named_by_its_submission_within_seconds(sessions, desk):
    delivery, token = submitted(BY_PHONE)
    took = await through_the_broker(desk, sessions, [delivery.envelope], 1)
    assert took < 3
    (received,) = await outcomes(sessions, "consultation.received.v1", ev.ConsultationReceived)
    assert (received.channel, received.submission_id) == ("phone", delivery.event.submission_id)
    (answer,) = await outcomes(sessions, "consultation.submission_accepted.v1", ev.ConsultationSubmissionAccepted)
    assert (answer.submission_id, answer.receipt_no, answer.consultation_id, answer.contact_expected_from) == (
        delivery.event.submission_id, received.receipt_no, received.consultation_id, received.contact_expected_from)
    assert receipts.is_well_formed(received.receipt_no)
    async with sessions() as s:
        row = (await s.execute(select(consultations))).one()
    assert (row.channel, row.receipt_no) == ("phone", received.receipt_no)
    assert row.submission_id == delivery.event.submission_id
    assert (row.phone, row.consultant_name_kana) == ("0312345678", "みほん はなこ")  # as the web form takes them
    # the code the operator read out opens the status view; it never travelled
    assert (await status_of(received.receipt_no, token, sessions))["status"] == "received"
    assert token not in delivery.envelope.model_dump_json()


async def test_a_submission_the_web_form_would_refuse_is_refused_with_its_reasons_and_nothing_recorded(sessions, desk):
    reading_in_latin = dict(SUBMISSION["consultant"], name_kana="Hanako")
    delivery, _ = submitted(dict(BY_PHONE, consent=False, consultant=reading_in_latin))
    await through_the_broker(desk, sessions, [delivery.envelope], 1)
    (refused,) = await outcomes(sessions, "consultation.submission_refused.v1", ev.ConsultationSubmissionRefused)
    assert (refused.submission_id, refused.operator_id) == (delivery.event.submission_id, "op-sato")
    assert {(e.field, e.code) for e in refused.errors} == {
        ("consultant.name_kana", "kana_only"), ("consent", "consent_required")}
    assert all(e.message for e in refused.errors)
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(consultations)) == 0
    assert await outcomes(sessions, "consultation.received.v1", ev.ConsultationReceived) == []


async def test_a_redelivery_and_a_publication_again_give_one_consultation_and_one_received(sessions, desk):
    delivery, _ = submitted(BY_PHONE)
    again, _ = submitted(BY_PHONE, submission_id=delivery.event.submission_id)  # a new event id
    await through_the_broker(desk, sessions, [delivery.envelope, delivery.envelope, again.envelope], 2)
    await take_phone_submissions([again, delivery], sessions)  # and once more, by hand
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(consultations)) == 1
    (received,) = await outcomes(sessions, "consultation.received.v1", ev.ConsultationReceived)
    assert received.submission_id == delivery.event.submission_id
    assert len(await outcomes(sessions, "consultation.submission_accepted.v1",
                              ev.ConsultationSubmissionAccepted)) == 1


async def test_a_message_that_cannot_be_read_goes_to_the_dlq(sessions, desk):
    delivery, _ = submitted(BY_PHONE)
    broken = delivery.envelope.model_copy(update={"data": dict(delivery.envelope.data, form=["not", "a", "form"])})
    connection = await aio_pika.connect(desk.amqp_url, timeout=10)
    try:
        channel = await connection.channel()
        dlq = await channel.get_queue(dead_letter_queue_name(QUEUE))
        await dlq.purge()
        good, _ = submitted(BY_PHONE)
        await through_the_broker(desk, sessions, [broken, good.envelope], 1)
        await asyncio.sleep(0.2)
        assert (await channel.declare_queue(dlq.name, passive=True)).declaration_result.message_count == 1
    finally:
        await connection.close()
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(consultations)) == 1


async def test_a_batch_costs_a_fixed_number_of_statements(sessions):
    batch = [submitted(BY_PHONE)[0] for _ in range(20)] + [submitted(dict(BY_PHONE, consent=False))[0]
                                                          for _ in range(5)]
    statements = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(sessions.engine.sync_engine, "before_cursor_execute", listen)
    try:
        await take_phone_submissions(batch, sessions)
    finally:
        event.remove(sessions.engine.sync_engine, "before_cursor_execute", listen)
    assert len([s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))]) <= 6
    assert len(await outcomes(sessions, "consultation.received.v1", ev.ConsultationReceived)) == 20
    assert len(await outcomes(sessions, "consultation.submission_refused.v1", ev.ConsultationSubmissionRefused)) == 5
