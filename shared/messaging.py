"""The consumers of a service: each subscription declared once, above its handler, and run in
batches. A handler takes every delivery that is waiting on its queue (up to the prefetch) and
handles them in one transaction, so a busy desk pays one commit, one inbox insert and one outbox
insert per batch instead of per event. How a batch is acked, held, retried or dead-lettered:
shared/batches.py.

aio-pika directly rather than FastStream: FastStream has no batch subscriber for RabbitMQ, and
its per-message machinery costs about 0.42 ms of CPU against aio-pika's 0.09 (bench/consume.py).
"""
import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from prometheus_client import Gauge

from shared.batches import BatchHandler, Batches, Delivery, Subscription
from shared.events import Event
from shared.settings import Settings
from shared.topology import dead_letter_queue_name, queue_arguments, queue_name

__all__ = ["Consumers", "Delivery", "Subscriptions"]
log = logging.getLogger("payhara.messaging")
E = TypeVar("E", bound=Event)
STEP_S = 2.0  # each step of a stop that talks to the broker: a SIGTERM must end the process
dead_letters = Gauge("payhara_dead_letters", "Messages waiting in each queue's DLQ", ["queue"])
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


class Consumers:
    """All consumers of one service, on one robust connection (it reconnects, and restores its
    channels and consumers by itself after the broker comes back)."""

    def __init__(self, settings: Settings, service: str):
        self.settings = settings
        self.service = service
        self.subscriptions: list[Subscription] = []
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None  # for recycling and dead-lettering
        self._runners: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        self._batches = Batches(settings, lambda: self._publisher, self._stopping)

    def on(self, event_type: type[E]) -> Callable[[BatchHandler], BatchHandler]:
        """Subscribe `handler(deliveries)` to this service's queue for `event_type`."""

        def decorate(handler: BatchHandler) -> BatchHandler:
            name = queue_name(self.service, event_type)
            self.subscriptions.append(Subscription(name, event_type, handler, asyncio.Queue()))
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
                try:  # bounded: with the broker away, aio-pika would wait for it to come back
                    await asyncio.wait_for(subscription.stop_consuming(), STEP_S)
                except Exception:  # the connection is gone: nothing more will arrive
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
            try:
                await asyncio.wait_for(self._connection.close(), STEP_S)
            except Exception as error:  # a broker that is away has nothing left to close
                log.warning("consumer connection not closed cleanly: %s", type(error).__name__)

    def ready(self) -> bool:
        """Connected, and every consumer's loop alive (a robust connection that is reconnecting
        is not closed, but it is not connected either)."""
        connection = self._connection
        return (connection is not None and connection.connected.is_set() and not connection.is_closed
                and all(not runner.done() for runner in self._runners))

    def paused(self) -> list[str]:
        """The queues whose consumer holds deliveries until a dependency is back."""
        return [s.queue for s in self.subscriptions if s.pause is not None]

    async def _run(self, subscription: Subscription) -> None:
        while True:
            subscription.idle.set()
            batch = [await subscription.waiting.get()]
            subscription.idle.clear()
            if subscription.busy and subscription.waiting.qsize() < self.settings.prefetch - 1:
                # under load, and not a full batch waiting: give the deliveries right behind a
                # moment to join. A delivery after a quiet spell goes at once: no wait for nobody
                await asyncio.sleep(self.settings.consume_linger_s)
            while len(batch) < self.settings.prefetch and not subscription.waiting.empty():
                batch.append(subscription.waiting.get_nowait())
            subscription.busy = len(batch) > 1
            try:
                await self._handle(subscription, batch)
            except Exception:  # never let one batch stop the queue: its messages come back
                log.exception("batch on %s not settled; the broker will redeliver it", subscription.queue)
            finally:
                for message in batch:
                    subscription.arrived.pop(id(message), None)

    async def _handle(self, subscription: Subscription, messages: list[AbstractIncomingMessage]) -> None:
        await self._batches.handle(subscription, messages)

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


