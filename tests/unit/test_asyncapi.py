"""The AsyncAPI document is generated from the topology and the contracts: every queue is a
channel and every consumed event's payload is a schema, with its fields."""
import yaml

from shared import events as ev
from shared.asyncapi import to_yaml
from services.subscriptions import SUBSCRIPTIONS
from shared.topology import queue_name


def test_every_queue_is_a_channel_and_every_event_a_schema_with_its_fields():
    document = yaml.safe_load(to_yaml(SUBSCRIPTIONS))
    assert document["asyncapi"].startswith("3.")
    expected = {queue_name(s, e) for s, events in SUBSCRIPTIONS.items() for e in events}
    assert set(document["channels"]) == expected
    for name, channel in document["channels"].items():
        assert channel["bindings"]["amqp"]["queue"]["name"] == name
    schemas = document["components"]["schemas"]
    for event_type in {e for events in SUBSCRIPTIONS.values() for e in events}:
        assert set(schemas[event_type.__name__]["properties"]) == set(event_type.model_fields), event_type
    assert "consultation_id" in schemas[ev.TaskIssued.__name__]["required"]
