"""Queue naming and arguments: one quorum queue per (service, event), each with its DLQ."""
from shared import events as ev
from shared import topology


def test_every_event_is_consumed_by_someone_so_no_publish_is_unroutable():
    consumed = {e for events in topology.SUBSCRIPTIONS.values() for e in events}
    assert consumed == set(ev.ALL_EVENTS)


def test_queue_names_are_service_dot_routing_key():
    assert topology.queue_name("eligibility", ev.ConsultationReceived) == "eligibility.consultation.received.v1"
    assert topology.dead_letter_queue_name("eligibility.consultation.received.v1") == (
        "eligibility.consultation.received.v1.dlq")


def test_queue_names_are_unique_across_the_desk():
    names = [topology.queue_name(s, e) for s, events in topology.SUBSCRIPTIONS.items() for e in events]
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


def test_the_five_services_are_the_desk():
    assert topology.SERVICES == ("intake", "eligibility", "scheduler", "notifier", "console")
