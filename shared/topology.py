"""The desk's messaging topology: one topic exchange for events, one dead-letter exchange,
and one quorum queue per (consuming service, event), each with a delivery limit and a DLQ.

Which service consumes which event is declared once, next to each handler; `payhara migrate`
declares the queues and bindings of all of them (`declare_all`), so an event published before its
consumer first started is still routed.
"""
from __future__ import annotations

from collections.abc import Mapping

import aio_pika
from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from shared import events as ev

EVENTS_EXCHANGE = "payhara.events"
DEAD_LETTER_EXCHANGE = "payhara.dlx"
# on a message the desk dead-letters itself: why (no personal data), from which queue, when (UTC
# ISO 8601), and after how many deliveries. A message the broker dead-letters (the delivery limit
# as a backstop) carries the broker's own x-death header instead.
REASON_HEADER = "x-payhara-reason"
FAILED_QUEUE_HEADER = "x-payhara-queue"
FAILED_AT_HEADER = "x-payhara-failed-at"
DELIVERIES_HEADER = "x-payhara-deliveries"
REPLAYED_HEADER = "x-payhara-replayed"  # how often `payhara dlq replay` brought it back

# the desk's services; which events each consumes is declared with its handlers
# (services/subscriptions.py reads them)
SERVICES = ("intake", "eligibility", "scheduler", "notifier", "console")
Subscribed = Mapping[str, tuple[type[ev.Event], ...]]



def queue_name(service: str, event: type[ev.Event]) -> str:
    return f"{service}.{event.routing_key}"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


def queue_arguments(queue: str, delivery_limit: int) -> dict:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": dead_letter_queue_name(queue),
    }


events_exchange = RabbitExchange(EVENTS_EXCHANGE, type=ExchangeType.TOPIC, durable=True)


def rabbit_queue(service: str, event: type[ev.Event], delivery_limit: int) -> RabbitQueue:
    name = queue_name(service, event)
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        durable=True,
        routing_key=event.routing_key,
        arguments=queue_arguments(name, delivery_limit),
    )


async def declare_all(channel: aio_pika.abc.AbstractChannel, subscribed: Subscribed,
                      delivery_limit: int) -> list[str]:
    """Declare exchanges, every service queue and its DLQ; idempotent. Returns the queue names."""
    exchange = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    declared = []
    for service, consumed in subscribed.items():
        for event in consumed:
            name = queue_name(service, event)
            dlq = await channel.declare_queue(
                dead_letter_queue_name(name), durable=True, arguments={"x-queue-type": "quorum"}
            )
            await dlq.bind(dlx, routing_key=dead_letter_queue_name(name))
            queue = await channel.declare_queue(
                name, durable=True, arguments=queue_arguments(name, delivery_limit)
            )
            await queue.bind(exchange, routing_key=event.routing_key)
            declared.append(name)
    return declared
