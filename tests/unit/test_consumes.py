"""The one way consumers are written, on FastStream's in-memory broker: a valid event reaches
the handler parsed, a malformed one never does. (Ack, nack and DLQ are shown on the real broker
in tests/integration/test_dead_letter.py: the in-memory broker ignores them.)"""
import uuid

from faststream.rabbit import TestRabbitBroker

from shared import events as ev
from shared.messaging import consumes, make_broker
from shared.settings import Settings
from shared.topology import EVENTS_EXCHANGE


def confirmed() -> ev.EligibilityConfirmed:
    return ev.EligibilityConfirmed(consultation_id=uuid.uuid4(), receipt_no="PH-261124-00010",
                                   reason="active_member", contact_expected_from="2026-11-25")


async def test_a_valid_event_reaches_the_handler_parsed_and_a_malformed_one_does_not():
    settings = Settings(env="test")
    broker = make_broker(settings, "scheduler")
    handled: list[tuple[ev.EligibilityConfirmed, ev.Envelope]] = []

    @consumes(broker, "scheduler", ev.EligibilityConfirmed, settings)
    async def book(event: ev.EligibilityConfirmed, envelope: ev.Envelope) -> None:
        handled.append((event, envelope))

    event = confirmed()
    envelope = ev.wrap(event, event.consultation_id)
    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(envelope.model_dump_json().encode(), exchange=EVENTS_EXCHANGE,
                                  routing_key=event.routing_key)
        await test_broker.publish(b"{broken", exchange=EVENTS_EXCHANGE, routing_key=event.routing_key)
        wrong_type = ev.wrap(ev.EligibilityRejected(consultation_id=uuid.uuid4(), receipt_no="x", reason="r"), uuid.uuid4())
        await test_broker.publish(wrong_type.model_dump_json().encode(), exchange=EVENTS_EXCHANGE,
                                  routing_key=event.routing_key)

    assert [(e.receipt_no, env.event_id) for e, env in handled] == [("PH-261124-00010", envelope.event_id)]
    assert handled[0][0] == event
