"""Dead letters: what is waiting in the desk's DLQs, and bringing it back to its consumer queue.

Listing only looks: it takes messages with basic.get without acknowledging them and then closes
its channel, so every one goes back to its DLQ in its place. Replaying moves a message only once
its copy on the consumer queue is confirmed, and never takes more than the DLQ held when it
started, so a message that is dead-lettered straight away again is not replayed in a loop.
Replaying an event that was already applied is harmless: each consumer's inbox skips an event_id
it has handled (shared/inbox.py).

Everything here returns ids, counts and reasons only, never a message body (personal data).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared.topology import (
    FAILED_AT_HEADER, REASON_HEADER, REPLAYED_HEADER, dead_letter_queue_name, queue_name,
)

PEEK_LIMIT = 1000  # messages looked at per DLQ for its reasons and oldest; the count is exact
# annotations the broker adds on delivery, not part of the message: the DLQ's count of peeks
# means nothing on the consumer queue (RabbitMQ 3.10 sets its own there, but a reader should not
# have to rely on that)
DELIVERY_ANNOTATIONS = ("x-delivery-count",)


@dataclass(frozen=True)
class DeadLetterQueue:
    """One DLQ as `payhara dlq list` shows it."""

    queue: str  # the DLQ
    consumer_queue: str  # where a replay sends its messages
    count: int
    oldest: datetime | None = None  # when the oldest of the peeked messages was dead-lettered (UTC)
    reasons: dict[str, int] = field(default_factory=dict)  # reason -> messages, most frequent first
    peeked: int = 0
    capped: bool = False  # more messages than were peeked: reasons and oldest cover the first `peeked`

    def as_json(self) -> dict:
        return {
            "queue": self.queue, "consumer_queue": self.consumer_queue, "count": self.count,
            "oldest": self.oldest.isoformat() if self.oldest else None, "reasons": self.reasons,
            "peeked": self.peeked, "capped": self.capped,
        }


@dataclass(frozen=True)
class Replayed:
    queue: str  # the DLQ
    consumer_queue: str
    moved: int
    waiting: int  # in the DLQ when the replay started


class UnknownQueue(ValueError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"unknown queue {name!r}; the desk's dead-letter queues are: {', '.join(known)}")
        self.name = name
        self.known = known


class ReplayFailed(RuntimeError):
    """A publish was not confirmed: that message went back to its DLQ and the replay stopped."""

    def __init__(self, queue: str, moved: int, message_id: str | None, error: BaseException):
        super().__init__(
            f"replay of {queue} stopped after {moved} moved: message {message_id} was not accepted by the "
            f"broker ({type(error).__name__}: {error}); it is back in the DLQ")
        self.queue = queue
        self.moved = moved
        self.message_id = message_id


def dead_letter_queues() -> dict[str, str]:
    """Every DLQ of the desk's topology, with the consumer queue it belongs to, in a stable order."""
    from services.subscriptions import SUBSCRIPTIONS

    consumer_queues = sorted(queue_name(service, event)
                             for service, events in SUBSCRIPTIONS.items() for event in events)
    return {dead_letter_queue_name(queue): queue for queue in consumer_queues}


def resolve(name: str) -> tuple[str, str]:
    """(DLQ, consumer queue) for a consumer queue's name or its DLQ's name."""
    known = dead_letter_queues()
    if name in known:
        return name, known[name]
    if dead_letter_queue_name(name) in known:
        return dead_letter_queue_name(name), name
    raise UnknownQueue(name, list(known))


async def list_dead_letters(amqp_url: str, peek_limit: int = PEEK_LIMIT) -> list[DeadLetterQueue]:
    """Every DLQ of the desk: its count, and the reasons and oldest death of its first messages."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        found = []
        for dlq, consumer_queue in dead_letter_queues().items():
            found.append(await _look_at(connection, dlq, consumer_queue, peek_limit))
        return found


async def _look_at(connection, dlq: str, consumer_queue: str, peek_limit: int) -> DeadLetterQueue:
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(dlq, passive=True)
        count = queue.declaration_result.message_count
        reasons: Counter[str] = Counter()
        oldest: datetime | None = None
        peeked = 0
        while count and peeked < peek_limit:
            message = await queue.get(no_ack=False, fail=False)  # unacked: it goes back on close
            if message is None:
                break
            peeked += 1
            reasons[reason_of(message)] += 1
            died = dead_lettered_at(message)
            if died is not None and (oldest is None or died < oldest):
                oldest = died
    finally:
        # closing the channel returns every message it took, in order, to the head of the DLQ
        await channel.close()
    return DeadLetterQueue(dlq, consumer_queue, count, oldest, dict(reasons.most_common()),
                           peeked, capped=count > peeked)


def reason_of(message: AbstractIncomingMessage) -> str:
    """The desk's reason when it dead-lettered the message itself, else the broker's
    (`delivery_limit`, `rejected`, `expired`, ...)."""
    headers = message.headers or {}
    if headers.get(REASON_HEADER):
        return _text(headers[REASON_HEADER])
    death = _first_death(headers)
    return _text(death.get("reason", "unknown")) if death else "unknown"


def dead_lettered_at(message: AbstractIncomingMessage) -> datetime | None:
    headers = message.headers or {}
    if headers.get(FAILED_AT_HEADER):
        try:
            moment = datetime.fromisoformat(_text(headers[FAILED_AT_HEADER]))
        except ValueError:
            moment = None
        if moment is not None:
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    death = _first_death(headers)
    moment = death.get("time") if death else None
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return None


def _first_death(headers: dict) -> dict | None:
    deaths = headers.get("x-death")
    return deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else None


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def replay(amqp_url: str, name: str, limit: int | None = None,
                 publish_timeout_s: float = 5.0) -> Replayed:
    """Move up to `limit` (default: all that are there now) dead letters of `name` back to its
    consumer queue. Raises UnknownQueue, or ReplayFailed when a publish is not confirmed."""
    dlq, consumer_queue = resolve(name)
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        # mandatory + on_return_raises: a consumer queue that is not there is an error, not a success
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue(dlq, passive=True)
        waiting = queue.declaration_result.message_count
        # only what is there now: a message that fails again comes back behind them
        to_move = waiting if limit is None else min(limit, waiting)
        moved = 0
        while moved < to_move:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            try:
                await _send_back(channel, message, consumer_queue, publish_timeout_s)
            except Exception as error:
                await _put_back(channel)
                raise ReplayFailed(dlq, moved, message.message_id, error) from error
            await message.ack()
            moved += 1
        return Replayed(dlq, consumer_queue, moved, waiting)


async def _send_back(channel: AbstractChannel, message: AbstractIncomingMessage, consumer_queue: str,
                     timeout: float) -> None:
    headers = {k: v for k, v in (message.headers or {}).items() if k not in DELIVERY_ANNOTATIONS}
    headers[REPLAYED_HEADER] = int(headers.get(REPLAYED_HEADER) or 0) + 1
    copy = aio_pika.Message(
        message.body, headers=headers, message_id=message.message_id,
        correlation_id=message.correlation_id, content_type=message.content_type,
        content_encoding=message.content_encoding, type=message.type, timestamp=message.timestamp,
        app_id=message.app_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    # the default exchange: straight to the consumer queue, not to every subscriber of the event
    await channel.default_exchange.publish(copy, routing_key=consumer_queue, mandatory=True, timeout=timeout)


async def _put_back(channel: AbstractChannel) -> None:
    """Return the message unacked to the head of its DLQ. Closing the channel does that; a nack
    with requeue would put it at the tail (RabbitMQ 3.10 quorum queues), behind younger ones."""
    try:
        await channel.close()
    except Exception:  # the channel is gone already: the broker has returned the message by itself
        pass
