"""The consumers of a service, and the one way they are written: in batches.

A handler takes every delivery that is waiting on its queue (up to the prefetch) and handles
them in one transaction, so a busy desk pays one commit, one inbox insert and one outbox insert
per batch instead of per event. The acknowledgement policy, chosen once for the whole desk
(what counts as which failure: shared/failures.py; what is done about it: shared/recovery.py):

- the batch's transaction commits, then its deliveries are acked;
- the infrastructure is away (database, SMTP): the consumer pauses, holds the batch unacked and
  retries it with backoff until the dependency is back; nothing is nacked, so the delivery limit
  is not spent, and an outage of any length is a delay;
- the batch fails for another reason: each of its deliveries is handled again on its own, so one
  bad event cannot hold back the others; one that fails on its own is nacked with requeue (the
  quorum queue counts it) and on its last allowed delivery goes to its DLQ with the reason;
- a message that can never be read (not JSON, the wrong shape) goes to the DLQ at once, with the
  reason, so the queue keeps flowing.

aio-pika directly rather than FastStream: FastStream has no batch subscriber for RabbitMQ, and
its per-message machinery costs about 0.42 ms of CPU against aio-pika's 0.09 (bench/consume.py).
"""
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from shared import recovery
from shared.events import Envelope, Event, unwrap
from shared.failures import is_infrastructure
from shared.settings import Settings
from shared.topology import dead_letter_queue_name, queue_arguments, queue_name

log = logging.getLogger("payhara.messaging")
E = TypeVar("E", bound=Event)

handled = Counter("payhara_deliveries", "Deliveries by queue and outcome", ["queue", "outcome"])
dead_letters = Gauge("payhara_dead_letters", "Messages waiting in each queue's DLQ", ["queue"])
batch_sizes = Histogram("payhara_batch_size", "Deliveries handled per transaction", ["queue"],
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128))


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """One event as it arrived: its envelope (event_id, occurred_at ...) and its parsed body."""

    envelope: Envelope
    event: E


BatchHandler = Callable[[list[Delivery[E]]], Awaitable[None]]
BoundHandler = Callable[[list[Delivery[E]], object], Awaitable[None]]


class Subscriptions:
    """The events one service consumes, each declared once, right above its handler:

        subscriptions = Subscriptions("scheduler")

        @subscriptions.on(ev.EligibilityConfirmed)
        async def confirmed(deliveries, deps): ...

    The composition root binds them to the running consumers with what the handlers need
    (`consumers.include(subscriptions, deps)`), and the broker's topology (queues, bindings, the
    AsyncAPI document) is read from these same declarations (services/subscriptions.py)."""

    def __init__(self, service: str):
        self.service = service
        self.handlers: dict[type[Event], BoundHandler] = {}

    def on(self, event_type: type[E]) -> Callable[[BoundHandler], BoundHandler]:
        def declare(handler: BoundHandler) -> BoundHandler:
            if event_type in self.handlers:
                raise ValueError(f"{self.service} subscribes to {event_type.routing_key} twice")
            self.handlers[event_type] = handler
            return handler

        return declare

    @property
    def events(self) -> tuple[type[Event], ...]:
        return tuple(self.handlers)


@dataclass
class _Subscription:
    queue: str
    event_type: type[Event]
    handler: BatchHandler
    waiting: asyncio.Queue
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # no batch in hand
    arrived: dict[int, float] = field(default_factory=dict)  # id(message) -> when it came
    pause: recovery.Pause | None = None
    stop_consuming: Callable[[], Awaitable] | None = None

    async def arrive(self, message: AbstractIncomingMessage) -> None:  # aio-pika awaits it
        self.arrived[id(message)] = time.monotonic()
        self.waiting.put_nowait(message)


class Consumers:
    """All consumers of one service, on one robust connection (it reconnects, and restores its
    channels and consumers by itself after the broker comes back)."""

    def __init__(self, settings: Settings, service: str):
        self.settings = settings
        self.service = service
        self.subscriptions: list[_Subscription] = []
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None  # for recycling and dead-lettering
        self._runners: list[asyncio.Task] = []
        self._stopping = asyncio.Event()

    def on(self, event_type: type[E]) -> Callable[[BatchHandler], BatchHandler]:
        """Subscribe `handler(deliveries)` to this service's queue for `event_type`."""

        def decorate(handler: BatchHandler) -> BatchHandler:
            name = queue_name(self.service, event_type)
            self.subscriptions.append(_Subscription(name, event_type, handler, asyncio.Queue()))
            return handler

        return decorate

    def include(self, subscriptions: Subscriptions, deps: object) -> None:
        """Consume everything `subscriptions` declares; each handler is called with `deps`."""
        if subscriptions.service != self.service:
            raise ValueError(f"{subscriptions.service}'s subscriptions given to {self.service}")
        for event_type, handler in subscriptions.handlers.items():
            self.on(event_type)(partial(handler, deps=deps))

    async def start(self) -> None:
        self._stopping.clear()
        self._connection = await aio_pika.connect_robust(
            self.settings.amqp_url, client_properties={"connection_name": f"payhara-{self.service}"},
            reconnect_interval=2.0, timeout=10)
        self._publisher = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        for subscription in self.subscriptions:
            channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=self.settings.prefetch)
            # same arguments as `payhara migrate` declares: a queue that differs fails loudly here
            queue = await channel.declare_queue(
                subscription.queue, durable=True,
                arguments=queue_arguments(subscription.queue, self.settings.delivery_limit))
            tag = await queue.consume(subscription.arrive)
            subscription.stop_consuming = lambda queue=queue, tag=tag: queue.cancel(tag)
            self._runners.append(asyncio.create_task(self._run(subscription), name=subscription.queue))
        self._runners.append(asyncio.create_task(self._watch_dead_letters(), name=f"{self.service}-dlq-depth"))

    async def stop(self, grace_s: float = 10.0) -> None:
        """Take no more deliveries, let each batch in hand finish (an e-mail half sent would
        otherwise be sent again) or, if it is held for a dependency, send it back uncounted;
        then close. Deliveries not begun go back to the queue."""
        self._stopping.set()
        for subscription in self.subscriptions:
            if subscription.stop_consuming is not None:
                try:
                    await subscription.stop_consuming()
                except Exception:  # the connection is already gone: nothing more will arrive
                    pass
        try:
            started = [s for s in self.subscriptions if s.stop_consuming is not None]
            await asyncio.wait_for(asyncio.gather(*(s.idle.wait() for s in started)), grace_s)
        except TimeoutError:
            log.warning("a batch did not finish within %.0f s of the stop: its deliveries come back", grace_s)
        for runner in self._runners:
            runner.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        self._runners.clear()
        if self._connection is not None:
            await self._connection.close()

    def ready(self) -> bool:
        """Connected, and every consumer's loop alive (a robust connection that is reconnecting
        is not closed, but it is not connected either)."""
        connection = self._connection
        return (connection is not None and connection.connected.is_set() and not connection.is_closed
                and all(not runner.done() for runner in self._runners))

    def paused(self) -> list[str]:
        """The queues whose consumer holds deliveries until a dependency is back."""
        return [s.queue for s in self.subscriptions if s.pause is not None]

    async def _run(self, subscription: _Subscription) -> None:
        while True:
            subscription.idle.set()
            batch = [await subscription.waiting.get()]
            subscription.idle.clear()
            if subscription.waiting.qsize() < self.settings.prefetch - 1:
                # not a full batch waiting: give the deliveries right behind a moment to join
                await asyncio.sleep(self.settings.consume_linger_s)
            while len(batch) < self.settings.prefetch and not subscription.waiting.empty():
                batch.append(subscription.waiting.get_nowait())
            try:
                await self._handle(subscription, batch)
            except Exception:  # never let one batch stop the queue: its messages come back
                log.exception("batch on %s not settled; the broker will redeliver it", subscription.queue)
            finally:
                for message in batch:
                    subscription.arrived.pop(id(message), None)

    async def _handle(self, subscription: _Subscription, messages: list[AbstractIncomingMessage]) -> None:
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

    async def _apply(self, subscription: _Subscription, items: list[tuple[AbstractIncomingMessage, Delivery]]
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

    def _end_pause(self, subscription: _Subscription, outcome: str) -> None:
        if subscription.pause is not None:
            subscription.pause.end(outcome)
            subscription.pause = None

    async def _recycle(self, subscription: _Subscription, messages: list[AbstractIncomingMessage]) -> bool:
        if self._publisher is None or self._publisher.is_closed:
            return False
        return await recovery.recycle(self._publisher, subscription.queue, messages, self.settings.publish_timeout_s)

    def _read(self, subscription: _Subscription, message: AbstractIncomingMessage) -> Delivery | str:
        """The delivery, or why it can never be read."""
        try:
            envelope, event = unwrap(message.body, subscription.event_type)
        except (ValidationError, ValueError) as error:
            return f"malformed: {describe(error)}"
        return Delivery(envelope, event)

    async def _failed(self, subscription: _Subscription, message: AbstractIncomingMessage,
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

    async def _dead_letter(self, subscription: _Subscription, message: AbstractIncomingMessage,
                           reason: str, outcome: str) -> None:
        await _settle(message, recovery.dead_letter(
            self._publisher, subscription.queue, message, reason, self.settings.publish_timeout_s))
        handled.labels(subscription.queue, outcome).inc()

    async def _watch_dead_letters(self) -> None:
        """Each DLQ's depth as a metric, for supervisors and alerts (a passive declare a minute)."""
        while True:
            try:
                channel = await self._connection.channel()
                try:
                    for subscription in self.subscriptions:
                        queue = await channel.declare_queue(dead_letter_queue_name(subscription.queue), passive=True)
                        dead_letters.labels(subscription.queue).set(queue.declaration_result.message_count)
                finally:
                    await channel.close()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # broker away, or a DLQ not declared yet: next time
                log.debug("dead-letter depth not read: %s", type(error).__name__)
            await asyncio.sleep(self.settings.dead_letter_check_s)


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
