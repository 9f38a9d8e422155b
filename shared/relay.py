"""The outbox relay: publishes committed outbox rows with publisher confirms and marks them sent.

Rows are claimed with FOR UPDATE SKIP LOCKED, so any number of instances can run side by side.
The relay is woken by LISTEN/NOTIFY and polls slowly as a fallback (a lost notification, a
listener connection that dropped). A crash after a confirm but before the commit republishes
the row: consumers are idempotent through their inbox.
"""
import asyncio
import logging
import time

import aio_pika
import asyncpg
from aiormq.exceptions import DeliveryError
from prometheus_client import Histogram
from sqlalchemy import Table, func, select, update

from shared.db import Database, libpq_dsn
from shared.outbox import notify_channel
from shared.recovery import Backoff
from shared.settings import Settings
from shared.topology import EVENTS_EXCHANGE

log = logging.getLogger("payhara.relay")


class _Outage:
    """The broker (or database) away, as the relay saw it: one warning when it starts and one
    summary when it ends, however many tries and rows in between."""

    def __init__(self, schema: str, error: BaseException | None):
        self.schema, self.started, self.tries = schema, time.monotonic(), 0
        log.warning("outbox relay of %s cannot publish (%s): events wait in the outbox, retrying with backoff",
                    schema, type(error).__name__ if error else "every row failed")

    def end(self) -> None:
        log.warning("outbox relay of %s publishing again after %.1f s and %d tries",
                    self.schema, time.monotonic() - self.started, self.tries)
MAX_BACKOFF_S = 30.0
batch_sizes = Histogram("payhara_relay_batch_size", "Outbox rows published per relay batch", ["schema"],
                        buckets=(1, 2, 4, 8, 16, 32, 64))


class OutboxRelay:
    def __init__(self, outbox: Table, sessions: Database, settings: Settings):
        self.outbox = outbox
        self.sessions = sessions
        self.settings = settings
        self.published = 0
        self.outage_tries = 0  # tries while the broker was away, over the relay's life
        self.refused = 0  # rows of the last batch the broker returned or refused (not an outage)
        self._wake = asyncio.Event()
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="outbox-listener")
        backoff, outage = Backoff(0.5, MAX_BACKOFF_S), None
        try:
            while True:
                self._wake.clear()  # before reading the outbox: a NOTIFY during the batch wakes the wait
                try:
                    sent, failed = await self.publish_batch()
                except Exception as error:  # broker or database away: the rows wait in the outbox
                    sent, failed = 0, 1
                    outage = outage or _Outage(self.outbox.schema, error)
                    await self.close()
                if failed > self.refused and not sent:
                    # the broker away: a NOTIFY must not cut the pause short, or every new row
                    # would wake another failing try
                    outage = outage or _Outage(self.outbox.schema, None)
                    outage.tries += 1
                    self.outage_tries += 1
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if outage is not None:
                    outage.end()
                    backoff, outage = Backoff(0.5, MAX_BACKOFF_S), None
                if sent >= self.settings.relay_batch:
                    continue
                # only rows the broker refused are left: wait for new rows or the slow poll
                try:
                    await asyncio.wait_for(self._wake.wait(), self.settings.relay_poll_s)
                except TimeoutError:
                    pass
        finally:
            listener.cancel()
            await self.close()

    async def publish_batch(self) -> tuple[int, int]:
        """Publish one batch of unsent rows; returns (sent, failed)."""
        t = self.outbox
        exchange = await self._ensure_exchange()
        async with self.sessions.begin() as session:
            rows = (
                await session.execute(
                    select(t.c.id, t.c.event_id, t.c.routing_key, t.c.correlation_id, t.c.body)
                    .where(t.c.sent_at.is_(None))
                    .order_by(t.c.attempts, t.c.id)
                    .limit(self.settings.relay_batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            self.refused = 0
            if not rows:
                return 0, 0
            results = await asyncio.gather(*(self._publish(exchange, r) for r in rows), return_exceptions=True)
            sent = [r.id for r, res in zip(rows, results) if res is None]
            failed = [(r, res) for r, res in zip(rows, results) if res is not None]
            self.refused = sum(isinstance(res, DeliveryError) for _, res in failed)
            if sent:
                await session.execute(update(t).where(t.c.id.in_(sent)).values(sent_at=func.now(), last_error=None))
            for row, error in failed:
                reason = f"{type(error).__name__}: {error}"[:500]
                if isinstance(error, DeliveryError):  # returned or refused: a fault to fix, not an outage
                    log.error("outbox event %s (%s) not published: %s", row.event_id, row.routing_key, reason)
                await session.execute(
                    update(t).where(t.c.id == row.id).values(attempts=t.c.attempts + 1, last_error=reason)
                )
        self.published += len(sent)
        batch_sizes.labels(t.schema).observe(len(rows))
        return len(sent), len(failed)

    async def _publish(self, exchange: aio_pika.abc.AbstractExchange, row) -> None:
        message = aio_pika.Message(
            body=row.body.encode(),
            message_id=str(row.event_id),
            correlation_id=str(row.correlation_id),
            content_type="application/json",
            type=row.routing_key,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        # mandatory + on_return_raises: an unroutable event is an error, not a success
        await exchange.publish(
            message, routing_key=row.routing_key, mandatory=True, timeout=self.settings.publish_timeout_s
        )

    async def _ensure_exchange(self) -> aio_pika.abc.AbstractExchange:
        if self._exchange is None or self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect_robust(self.settings.amqp_url, timeout=10)
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await channel.declare_exchange(
                EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchange

    async def close(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection.close(), 2.0)
            except Exception:
                pass

    async def _listen(self) -> None:
        channel = notify_channel(self.outbox.schema)
        dsn = libpq_dsn(self.settings.database_url)
        lost_since: float | None = None
        while True:
            try:
                connection = await asyncpg.connect(dsn, timeout=self.settings.db_connect_timeout_s)
                try:
                    await connection.add_listener(channel, lambda *_: self._wake.set())
                    if lost_since is not None:
                        log.warning("outbox listener of %s back after %.1f s", self.outbox.schema,
                                    time.monotonic() - lost_since)
                        lost_since = None
                    self._wake.set()  # catch up on anything written while not listening
                    while not connection.is_closed():
                        await asyncio.sleep(5)
                finally:
                    await connection.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if lost_since is None:  # once per outage; the slow poll covers the gap
                    log.warning("outbox listener of %s lost its connection: %s", self.outbox.schema, type(exc).__name__)
                    lost_since = time.monotonic()
                await asyncio.sleep(2)
