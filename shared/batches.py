"""How one batch of deliveries is settled: the desk's acknowledgement policy, in one place
(which failure is which: shared/failures.py; holding, recycling, dead-lettering:
shared/recovery.py).

- the handler's transaction commits: the deliveries are acked, one `multiple` ack per channel;
- the infrastructure is away (database, SMTP): hold the batch unacked and retry it with backoff
  until the dependency is back; nothing is nacked, so the delivery limit is not spent;
- the batch fails for another reason: each delivery is handled again on its own, so one bad
  event cannot hold back the others; one that fails on its own is nacked with requeue (the
  quorum queue counts it) and on its last allowed delivery goes to its DLQ with the reason;
- a message that can never be read (not JSON, the wrong shape) goes to its DLQ at once.
"""
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from shared import recovery
from shared.events import Envelope, Event, unwrap
from shared.failures import is_infrastructure
from shared.settings import Settings

log = logging.getLogger("payhara.messaging")
E = TypeVar("E", bound=Event)

handled = Counter("payhara_deliveries", "Deliveries by queue and outcome", ["queue", "outcome"])
batch_sizes = Histogram("payhara_batch_size", "Deliveries handled per transaction", ["queue"],
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128))


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """One event as it arrived: its envelope (event_id, occurred_at ...) and its parsed body."""

    envelope: Envelope
    event: E


BatchHandler = Callable[[list[Delivery[E]]], Awaitable[None]]


@dataclass
class Subscription:
    queue: str
    event_type: type[Event]
    handler: BatchHandler
    waiting: asyncio.Queue
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # no batch in hand
    arrived: dict[int, float] = field(default_factory=dict)  # id(message) -> when it came
    pause: recovery.Pause | None = None
    stop_consuming: Callable[[], Awaitable] | None = None
    busy: bool = False  # the last batch held more than one delivery: the next one lingers

    async def arrive(self, message: AbstractIncomingMessage) -> None:  # aio-pika awaits it
        self.arrived[id(message)] = time.monotonic()
        self.waiting.put_nowait(message)


class Batches:
    """Settles the batches of one service's consumers."""

    def __init__(self, settings: Settings, publisher: Callable[[], AbstractChannel | None],
                 stopping: asyncio.Event):
        self.settings = settings
        self._publisher = publisher  # the consumers' confirmed channel, for recycling and DLQs
        self._stopping = stopping

    async def handle(self, subscription: Subscription, messages: list[AbstractIncomingMessage]) -> None:
        readable: list[tuple[AbstractIncomingMessage, Delivery]] = []
        for message in messages:
            delivery = self._read(subscription, message)
            if isinstance(delivery, str):
                await self._dead_letter(subscription, message, delivery, "rejected")
            else:
                readable.append((message, delivery))
        if not readable:
            return
        outcome = await self._apply(subscription, readable)
        if outcome is None:
            await _ack_all([message for message, _ in readable])
            handled.labels(subscription.queue, "acked").inc(len(readable))
            batch_sizes.labels(subscription.queue).observe(len(readable))
        elif isinstance(outcome, Exception) and len(readable) == 1:
            await self._failed(subscription, readable[0][0], outcome)
        elif isinstance(outcome, Exception):
            log.warning("batch of %d on %s failed (%s): handling each on its own",
                        len(readable), subscription.queue, type(outcome).__name__)
            for item in readable:
                single = await self._apply(subscription, [item])
                if single is None:
                    await _settle(item[0], item[0].ack())
                    handled.labels(subscription.queue, "acked").inc()
                elif isinstance(single, Exception):
                    await self._failed(subscription, item[0], single)

    async def _apply(self, subscription: Subscription, items: list[tuple[AbstractIncomingMessage, Delivery]]
                     ) -> Exception | str | None:
        """Run the handler on these deliveries, holding them through infrastructure failures.
        Returns None (applied), the error that is the message's fault, or why they were let go
        while held ("recycled": back at the tail of the queue; "channel_lost": the broker took
        them back; both are settled)."""
        backoff = recovery.Backoff(self.settings.consume_retry_first_s, self.settings.consume_retry_max_s)
        messages = [message for message, _ in items]
        now = time.monotonic()
        oldest = min(subscription.arrived.setdefault(id(m), now) for m in messages)
        while True:
            try:
                await subscription.handler([delivery for _, delivery in items])
            except Exception as error:
                if not is_infrastructure(error):
                    self._end_pause(subscription, "the handler failed for another reason")
                    return error
                if subscription.pause is None:
                    subscription.pause = recovery.Pause(subscription.queue, error, len(items))
                subscription.pause.retries += 1
            else:
                self._end_pause(subscription, "applied")
                return None
            if all(getattr(m.channel, "is_closed", False) for m in messages):
                return "channel_lost"  # the broker gives them out again; the inbox knows them
            if self._stopping.is_set() or time.monotonic() - oldest > self.settings.consume_hold_s:
                if await self._recycle(subscription, messages):
                    return "recycled"
            try:
                await asyncio.wait_for(self._stopping.wait(), backoff.next_delay())
            except TimeoutError:
                pass

    def _end_pause(self, subscription: Subscription, outcome: str) -> None:
        if subscription.pause is not None:
            subscription.pause.end(outcome)
            subscription.pause = None

    async def _recycle(self, subscription: Subscription, messages: list[AbstractIncomingMessage]) -> bool:
        publisher = self._publisher()
        if publisher is None or publisher.is_closed:
            return False
        return await recovery.recycle(publisher, subscription.queue, messages, self.settings.publish_timeout_s)

    def _read(self, subscription: Subscription, message: AbstractIncomingMessage) -> Delivery | str:
        """The delivery, or why it can never be read."""
        try:
            envelope, event = unwrap(message.body, subscription.event_type)
        except (ValidationError, ValueError) as error:
            return f"malformed: {describe(error)}"
        return Delivery(envelope, event)

    async def _failed(self, subscription: Subscription, message: AbstractIncomingMessage,
                      error: Exception) -> None:
        """The message's own fault: requeue it (the broker counts), or on its last allowed
        delivery send it to the DLQ with the reason."""
        tries = recovery.delivery_count(message) + 1
        if tries > self.settings.delivery_limit:
            # the type only: an exception's text can carry the personal data it was handling
            reason = f"handler failed {tries} times: {type(error).__name__}"
            await self._dead_letter(subscription, message, reason, "dead_lettered")
            return
        log.warning("event %s on %s failed (%s), try %d of %d: requeued", message.message_id,
                    subscription.queue, type(error).__name__, tries, self.settings.delivery_limit + 1)
        await _settle(message, message.nack(requeue=True))
        handled.labels(subscription.queue, "requeued").inc()

    async def _dead_letter(self, subscription: Subscription, message: AbstractIncomingMessage,
                           reason: str, outcome: str) -> None:
        await _settle(message, recovery.dead_letter(
            self._publisher(), subscription.queue, message, reason, self.settings.publish_timeout_s))
        handled.labels(subscription.queue, outcome).inc()

async def _ack_all(messages: Sequence[AbstractIncomingMessage]) -> None:
    """One `multiple` ack per channel: deliveries reach the queue in delivery-tag order and each
    batch takes the oldest of them, so the last tag covers exactly this batch. Deliveries of a
    channel that was lost meanwhile cannot be acked: the broker redelivers them, and the inbox
    recognises them."""
    last_of_channel: dict[int, AbstractIncomingMessage] = {}
    for message in messages:
        last_of_channel[id(message.channel)] = message
    for message in last_of_channel.values():
        await _settle(message, message.ack(multiple=True))


async def _settle(message: AbstractIncomingMessage, settling: Awaitable) -> None:
    """Ack, nack or reject. A delivery whose channel is gone has nothing left to settle: the
    broker gives it out again, and the inbox recognises it. The other channels' go on."""
    try:
        await settling
    except (AMQPError, ChannelInvalidStateError, ConnectionError) as error:
        log.warning("delivery %s not settled, its channel is gone (%s): the broker redelivers it",
                    message.message_id, type(error).__name__)


def describe(error: Exception) -> str:
    """Why a message was refused, without the values it carried (they may be personal data)."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['type']}" for e in error.errors()
        )[:500]
    return str(error)[:500]  # our own ValueErrors name event types only
