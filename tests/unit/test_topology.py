"""Queue naming and arguments, and the topology read from the handlers: every handler a service
runs has a queue bound to its event, and every queue bound has a handler that consumes it."""
import importlib

import pytest

from services.subscriptions import SUBSCRIPTIONS
from shared import events as ev
from shared import topology
from shared.settings import Settings


class RecordingChannel:
    """What `declare_all` asks of the broker: queues declared and the routing keys bound."""

    def __init__(self):
        self.bindings: dict[str, str] = {}  # queue -> routing key

    async def declare_exchange(self, name, *args, **kwargs):
        return name

    async def declare_queue(self, name, **kwargs):
        channel = self

        class Queue:
            async def bind(self, exchange, routing_key):
                if exchange == topology.EVENTS_EXCHANGE:
                    channel.bindings[name] = routing_key

        return Queue()


def test_every_event_is_consumed_by_someone_so_no_publish_is_unroutable():
    consumed = {e for events in SUBSCRIPTIONS.values() for e in events}
    assert consumed == set(ev.ALL_EVENTS)


def test_the_subscriptions_are_the_five_services_of_the_desk():
    assert tuple(SUBSCRIPTIONS) == topology.SERVICES == ("intake", "eligibility", "scheduler", "notifier", "console")


@pytest.mark.parametrize("service", topology.SERVICES)
async def test_every_handler_has_a_binding_and_every_binding_a_handler(service):
    channel = RecordingChannel()
    await topology.declare_all(channel, SUBSCRIPTIONS, 5)
    bound = {queue: key for queue, key in channel.bindings.items() if queue.startswith(service + ".")}

    app_module = importlib.import_module(f"services.{service}.main")
    consumers = app_module.create_app(Settings(env="test")).state.runtime.consumers
    running = {s.queue: s.event_type.routing_key for s in consumers.subscriptions}

    assert running, f"{service} runs no consumer"
    assert running == bound, f"{service}: handlers {sorted(running)} but bindings {sorted(bound)}"
    for queue, routing_key in running.items():
        assert queue == f"{service}.{routing_key}"


def test_a_service_cannot_subscribe_to_one_event_twice():
    from shared.messaging import Subscriptions

    subscriptions = Subscriptions("console")
    subscriptions.on(ev.TaskIssued)(lambda deliveries, deps: None)
    with pytest.raises(ValueError, match="twice"):
        subscriptions.on(ev.TaskIssued)(lambda deliveries, deps: None)


def test_queue_names_are_service_dot_routing_key():
    assert topology.queue_name("eligibility", ev.ConsultationReceived) == "eligibility.consultation.received.v1"
    assert topology.dead_letter_queue_name("eligibility.consultation.received.v1") == (
        "eligibility.consultation.received.v1.dlq")


def test_queue_names_are_unique_across_the_desk():
    names = [topology.queue_name(s, e) for s, events in SUBSCRIPTIONS.items() for e in events]
    assert len(names) == len(set(names))


def test_queues_are_quorum_with_a_delivery_limit_and_their_own_dead_letter_route():
    arguments = topology.queue_arguments("notifier.callback.scheduled.v1", 5)
    assert arguments == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 5,
        "x-dead-letter-exchange": topology.DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": "notifier.callback.scheduled.v1.dlq",
    }


def test_the_faststream_queue_binds_by_routing_key_with_the_same_arguments():
    queue = topology.rabbit_queue("scheduler", ev.EligibilityConfirmed, 7)
    assert queue.name == "scheduler.eligibility.confirmed.v1"
    assert queue.routing_key == "eligibility.confirmed.v1"
    assert queue.durable and queue.arguments["x-delivery-limit"] == 7
    assert queue.arguments["x-queue-type"] == "quorum"
