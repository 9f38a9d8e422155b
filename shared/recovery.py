"""What a consumer does with deliveries it cannot apply: now (the infrastructure is away) or ever
(the message is at fault). The classification itself is in shared/failures.py.

- **Not now**: hold the deliveries unacked and retry the handler with growing pauses
  (`Backoff`) until the dependency is back; the broker counts nothing, since nothing was nacked.
  RabbitMQ takes back a delivery left unacked for its `consumer_timeout` (30 min) and counts
  that return, so a delivery held for `consume_hold_s` (10 min) goes back to the tail of its own
  queue as a fresh message, its delivery count at zero (`recycle`), and is held again when it
  comes round. A stop of the service recycles what it holds, for the same reason.
- **Never**: after the broker's delivery limit of tries, or at once when the message cannot be
  read, publish it to its DLQ with the reason in headers (`dead_letter`), then ack it. If that
  publish fails, reject it instead: the broker dead-letters it with its own x-death header.
"""
import logging
import random
import time
from datetime import datetime, timezone

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from prometheus_client import Counter, Gauge

from shared.topology import (
    DEAD_LETTER_EXCHANGE, DELIVERIES_HEADER, FAILED_AT_HEADER, FAILED_QUEUE_HEADER, REASON_HEADER,
    dead_letter_queue_name,
)

log = logging.getLogger("payhara.recovery")
paused_gauge = Gauge("payhara_consumer_paused", "1 while a consumer holds deliveries for a dependency", ["queue"])
pauses = Counter("payhara_consumer_pauses", "Times a consumer paused because a dependency was away", ["queue"])
recycled = Counter("payhara_deliveries_recycled", "Held deliveries sent back to the tail of their queue", ["queue"])


class Backoff:
    """0.5 s, 1 s, 2 s ... up to `ceiling_s`, each with ±20% jitter so instances do not retry in step."""

    def __init__(self, first_s: float, ceiling_s: float):
        self.first_s, self.ceiling_s, self.tries = first_s, ceiling_s, 0

    def next_delay(self) -> float:
        delay = min(self.first_s * 2 ** self.tries, self.ceiling_s)
        self.tries += 1
        return delay * random.uniform(0.8, 1.2)


class Pause:
    """One outage as one consumer saw it: a warning when it starts, a summary when it ends."""

    def __init__(self, queue: str, error: BaseException, held: int):
        self.queue, self.started, self.retries = queue, time.monotonic(), 0
        paused_gauge.labels(queue).set(1)
        pauses.labels(queue).inc()
        log.warning("consumer %s paused: a dependency is away (%s); holding %d deliveries, retrying with backoff",
                    queue, type(error).__name__, held)

    def end(self, outcome: str) -> None:
        paused_gauge.labels(self.queue).set(0)
        log.warning("consumer %s resumed after %.1f s and %d retries: %s",
                    self.queue, time.monotonic() - self.started, self.retries, outcome)


def delivery_count(message: AbstractIncomingMessage) -> int:
    """How often the broker gave this message out before (quorum queues say so on redelivery)."""
    value = (message.headers or {}).get("x-delivery-count", 0)
    return value if isinstance(value, int) else 0


def _copy(message: AbstractIncomingMessage, headers: dict) -> aio_pika.Message:
    return aio_pika.Message(
        body=message.body, headers=headers, message_id=message.message_id,
        correlation_id=message.correlation_id, content_type=message.content_type, type=message.type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


def _headers_without_broker_counts(message: AbstractIncomingMessage) -> dict:
    return {k: v for k, v in (message.headers or {}).items() if k != "x-delivery-count"}


async def recycle(channel: AbstractChannel, queue: str, messages: list[AbstractIncomingMessage],
                  timeout_s: float) -> bool:
    """Publish each held message to the tail of its own queue (confirmed), then ack the original.
    False when the broker did not confirm: keep holding them."""
    exchange = channel.default_exchange
    try:
        for message in messages:
            await exchange.publish(_copy(message, _headers_without_broker_counts(message)),
                                   routing_key=queue, mandatory=True, timeout=timeout_s)
    except Exception as error:
        log.warning("held deliveries of %s could not be recycled (%s): still holding", queue, type(error).__name__)
        return False
    for message in messages:
        await message.ack()
    recycled.labels(queue).inc(len(messages))
    return True


async def dead_letter(channel: AbstractChannel | None, queue: str, message: AbstractIncomingMessage,
                      reason: str, timeout_s: float) -> None:
    """Move a message that can never be processed to `<queue>.dlq` with why, then ack it."""
    log.error("event %s dead-lettered to %s: %s", message.message_id, dead_letter_queue_name(queue), reason)
    headers = _headers_without_broker_counts(message) | {
        REASON_HEADER: reason[:500], FAILED_QUEUE_HEADER: queue, DELIVERIES_HEADER: delivery_count(message) + 1,
        FAILED_AT_HEADER: datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        if channel is None:
            raise ConnectionError("no publishing channel")
        exchange = await channel.get_exchange(DEAD_LETTER_EXCHANGE, ensure=False)
        await exchange.publish(_copy(message, headers), routing_key=dead_letter_queue_name(queue),
                               mandatory=True, timeout=timeout_s)
    except Exception as error:  # the broker's own dead-lettering still keeps it, with x-death
        log.warning("dead letter %s published by the broker instead (%s)", message.message_id, type(error).__name__)
        await message.reject(requeue=False)
        return
    await message.ack()
