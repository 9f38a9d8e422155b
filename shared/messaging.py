"""The broker of a service and the one way its consumers are written.

Acknowledgement policy, chosen once for the whole desk: a handler's transaction commits, then
the delivery is acked. Any other exception nacks with requeue (transient: the database or the
broker was away); the quorum queue's delivery limit then sends a message that keeps failing to
its DLQ. A message that can never be processed (not JSON, wrong shape) is rejected at once to
the DLQ with the reason logged, so the queue keeps flowing.
"""
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from faststream import AckPolicy
from faststream.exceptions import RejectMessage
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from prometheus_client import REGISTRY
from pydantic import ValidationError

from shared.events import Envelope, Event, unwrap
from shared.settings import Settings
from shared.topology import events_exchange, rabbit_queue

log = logging.getLogger("payhara.messaging")
E = TypeVar("E", bound=Event)
Handler = Callable[[E, Envelope], Awaitable[None]]


def make_broker(settings: Settings, service: str) -> RabbitBroker:
    return RabbitBroker(
        settings.amqp_url,
        app_id=f"payhara-{service}",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        default_channel=Channel(prefetch_count=settings.prefetch),
        graceful_timeout=10.0,
        reconnect_interval=2.0,
        middlewares=[RabbitPrometheusMiddleware(registry=REGISTRY)],
        log_level=logging.DEBUG,
    )


def consumes(broker: RabbitBroker, service: str, event_type: type[E], settings: Settings):
    """Subscribe `handler(event, envelope)` to this service's queue for `event_type`."""

    def decorate(handler: Handler) -> Handler:
        queue = rabbit_queue(service, event_type, settings.delivery_limit)

        @broker.subscriber(queue, events_exchange, title=queue.name, decoder=keep_body)
        async def deliver(message: RabbitMessage) -> None:
            try:
                envelope, event = unwrap(message.body, event_type)
            except (ValidationError, ValueError) as error:
                log.error(
                    "malformed message rejected to %s.dlq: message_id=%s reason=%s",
                    queue.name, message.message_id, describe(error),
                )
                raise RejectMessage() from None
            await handler(event, envelope)

        return handler

    return decorate


async def keep_body(message: RabbitMessage) -> bytes:
    """No decoding before `deliver`: unwrap() parses, and rejects what it cannot read."""
    return message.body


def describe(error: Exception) -> str:
    """Why a message was refused, without the values it carried (they may be personal data)."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['type']}" for e in error.errors()
        )[:500]
    return str(error)[:500]  # our own ValueErrors name event types only
