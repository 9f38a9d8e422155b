"""The event contracts: envelope fields, strict producers, tolerant consumers, routing keys."""
import json
import uuid
from datetime import date, datetime, timezone

import pytest
from pydantic import ValidationError

from shared import events as ev

ROUTING_KEY = r"^[a-z_]+\.[a-z_]+\.v[0-9]+$"


def received() -> ev.ConsultationReceived:
    return ev.ConsultationReceived(
        consultation_id=uuid.uuid4(), receipt_no="PH-261124-00010", channel="web",
        received_at=datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc), contact_expected_from=date(2026, 11, 25),
        consultant=ev.Consultant(name="見本 花子", name_kana="みほん はなこ", role="member", member_no="M0001"),
        institution=ev.InstitutionInfo(), contact=ev.Contact(method="email", email="a@example.com"),
        category="online", summary="要旨", urls=["https://example.com/1"],
    )


@pytest.mark.parametrize("event_type", ev.ALL_EVENTS, ids=lambda e: e.__name__)
def test_routing_keys_are_aggregate_past_tense_and_version(event_type):
    import re

    assert re.fullmatch(ROUTING_KEY, event_type.routing_key)


def test_routing_keys_are_unique():
    keys = [e.routing_key for e in ev.ALL_EVENTS]
    assert len(keys) == len(set(keys))


def test_the_envelope_carries_id_time_correlation_and_version():
    event = received()
    envelope = ev.wrap(event, event.consultation_id)
    body = json.loads(envelope.model_dump_json())
    assert set(body) == {"event_id", "event_type", "occurred_at", "correlation_id", "schema_version", "data"}
    assert body["event_type"] == "consultation.received.v1" and body["schema_version"] == 1
    assert body["correlation_id"] == str(event.consultation_id)
    assert body["occurred_at"].endswith("Z") or "+00:00" in body["occurred_at"]
    assert ev.wrap(event, event.consultation_id).event_id != envelope.event_id


def test_a_round_trip_gives_back_the_same_event():
    event = received()
    envelope, parsed = ev.unwrap(ev.wrap(event, event.consultation_id).model_dump_json(), ev.ConsultationReceived)
    assert parsed == event


def test_consumers_ignore_fields_added_later_in_the_same_version():
    event = received()
    body = json.loads(ev.wrap(event, event.consultation_id).model_dump_json())
    body["data"]["added_in_a_later_release"] = {"x": 1}
    body["routed_by"] = "someone"
    _, parsed = ev.unwrap(json.dumps(body), ev.ConsultationReceived)
    assert parsed.receipt_no == event.receipt_no


def test_producers_are_strict_about_what_they_send():
    with pytest.raises(ValidationError):
        ev.ConsultationReceived(**{**received().model_dump(), "category": "gossip"})
    with pytest.raises(ValidationError):  # a naive time is not an instant
        ev.CallbackScheduled(consultation_id=uuid.uuid4(), receipt_no="r", booking_id=uuid.uuid4(),
                             slot_starts_at=datetime(2026, 11, 25, 10), slot_ends_at=datetime(2026, 11, 25, 11))


def test_a_message_of_another_type_is_refused():
    event = received()
    with pytest.raises(ValueError, match="expected eligibility.confirmed.v1"):
        ev.unwrap(ev.wrap(event, event.consultation_id).model_dump_json(), ev.EligibilityConfirmed)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"event_type": "consultation.received.v1"}'])
def test_malformed_bodies_raise_validation_errors(body):
    with pytest.raises(ValidationError):
        ev.unwrap(body, ev.ConsultationReceived)


def test_a_confirmation_from_before_the_booking_preferences_parses_with_their_defaults():
    old = {"consultation_id": str(uuid.uuid4()), "receipt_no": "PH-261124-00010", "reason": "active_member",
           "contact_expected_from": "2026-11-25"}
    confirmed = ev.EligibilityConfirmed.model_validate(old)
    assert (confirmed.urgent, confirmed.preferred_time, confirmed.contact_method) == (False, "any", "phone")
    consultation = ev.ConsultationReceived.model_validate(received().model_dump(exclude={"urgent", "preferred_time"}))
    assert (consultation.urgent, consultation.preferred_time) == (False, "any")
    with pytest.raises(ValidationError):  # a producer cannot send a time the scheduler does not know
        ev.EligibilityConfirmed(**old, preferred_time="evening")
