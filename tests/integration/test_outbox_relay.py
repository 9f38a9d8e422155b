"""The outbox relay on the real PostgreSQL and RabbitMQ: what is committed is published, once,
with confirms; what is rolled back never is; a broker outage only delays it."""
import asyncio
import logging
import time
import uuid
from typing import ClassVar

import aio_pika
import pytest
from sqlalchemy import func, insert, select, text

from tests.tcp_proxy import AmqpProxy
from services.intake.orm import outbox
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.outbox import add_event
from shared.relay import OutboxRelay
from shared.topology import EVENTS_EXCHANGE


class RelayProbe(ev.Event):
    """An event only this file's own queue is bound to, so no service queue fills up."""

    routing_key: ClassVar[str] = "test.relay_probed.v1"
    n: int


class Received:
    def __init__(self):
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def take(self, message):
        self.messages.append(message)

    @property
    def ids(self) -> list[str]:
        return [m.message_id for m in self.messages]

    async def until(self, count: int, timeout: float) -> float:
        """Seconds until `count` messages were in, or the timeout (the caller asserts the count)."""
        start = time.monotonic()
        while len(self.messages) < count and time.monotonic() - start < timeout:
            await asyncio.sleep(0.05)
        return time.monotonic() - start


@pytest.fixture(scope="module")
async def sessions(desk):
    engine = make_engine(desk, pool_size=5)
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture
async def received(desk, sessions):
    async with sessions.begin() as session:
        await session.execute(text("truncate intake.outbox, intake.inbox"))
    connection = await aio_pika.connect(desk.amqp_url, timeout=10)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(EVENTS_EXCHANGE, routing_key=RelayProbe.routing_key)
    inbox = Received()
    await queue.consume(inbox.take, no_ack=True)
    yield inbox
    await connection.close()


async def stage(sessions, count: int, start: int = 0) -> list[str]:
    async with sessions.begin() as session:
        staged = [await add_event(session, outbox, RelayProbe(n=start + i), uuid.uuid4()) for i in range(count)]
    return [str(e.event_id) for e in staged]


async def unsent(sessions) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).where(outbox.c.sent_at.is_(None)))


async def stage_unroutable(sessions) -> ev.Envelope:
    """A row whose routing key no queue is bound to (what a forgotten binding looks like)."""
    orphan = ev.Envelope(event_type="test.nobody_listens.v1", correlation_id=uuid.uuid4(), schema_version=1, data={})
    async with sessions.begin() as session:
        await session.execute(insert(outbox).values(
            event_id=orphan.event_id, routing_key=orphan.event_type,
            correlation_id=orphan.correlation_id, body=orphan.model_dump_json(),
        ))
    return orphan


async def stop(task: asyncio.Task) -> None:
    if task.done():  # the relay must outlive every outage: show why it ended
        raise AssertionError(f"the relay stopped by itself: {task.exception()!r}")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_only_committed_rows_are_published(desk, sessions, received):
    async with sessions.begin() as session:
        kept = [await add_event(session, outbox, RelayProbe(n=i), uuid.uuid4()) for i in range(3)]
    async with sessions() as session:
        await session.begin()
        dropped = [await add_event(session, outbox, RelayProbe(n=9), uuid.uuid4()) for _ in range(2)]
        await session.rollback()

    relay = OutboxRelay(outbox, sessions, desk)
    try:
        assert await relay.publish_batch() == (3, 0)
        assert await relay.publish_batch() == (0, 0)
    finally:
        await relay.close()
    await received.until(3, timeout=5)
    await asyncio.sleep(0.5)  # room for anything extra to show up

    assert sorted(received.ids) == sorted(str(e.event_id) for e in kept)
    assert not {str(e.event_id) for e in dropped} & set(received.ids)
    by_id = {str(e.event_id): e for e in kept}
    for message in received.messages:
        envelope = by_id[message.message_id]
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.correlation_id == str(envelope.correlation_id)
        assert message.routing_key == RelayProbe.routing_key
        assert ev.Envelope.model_validate_json(message.body) == envelope
    async with sessions() as session:
        rows = (await session.execute(select(outbox.c.event_id, outbox.c.sent_at, outbox.c.attempts))).all()
    assert {str(r.event_id) for r in rows} == set(by_id)
    assert all(r.sent_at is not None and r.attempts == 0 for r in rows)


async def listening(sessions, relay: OutboxRelay) -> asyncio.Task:
    """relay.run() as a task, once its LISTEN is in place: what comes after is woken by NOTIFY."""
    task = asyncio.create_task(relay.run())
    query = text("select count(*) from pg_stat_activity where datname = current_database() "
                 "and query ilike 'listen%intake_outbox%'")
    for _ in range(100):
        async with sessions() as session:
            if await session.scalar(query):
                break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the listener's catch-up wake-up has come and gone
    return task


async def test_notify_wakes_the_relay_long_before_the_poll(desk, sessions, received):
    task = await listening(sessions, OutboxRelay(outbox, sessions, desk.model_copy(update={"relay_poll_s": 60.0})))
    try:
        for round_no in (1, 2):
            ids = await stage(sessions, 1, start=round_no)
            elapsed = await received.until(round_no, timeout=5)
            assert received.ids[-1:] == ids, f"round {round_no}: nothing within 5 s while polling every 60 s"
            assert elapsed < 3
    finally:
        await stop(task)


@pytest.mark.parametrize("was_connected", [False, True], ids=["down-from-the-start", "lost-while-connected"])
async def test_a_broker_outage_only_delays_publishing(desk, sessions, received, was_connected, caplog):
    proxy = AmqpProxy.in_front_of(desk.amqp_url)
    await proxy.start()
    settings = desk.model_copy(update={"amqp_url": proxy.url(desk.amqp_url), "publish_timeout_s": 1.0})
    relay, task, before = OutboxRelay(outbox, sessions, settings), None, []
    try:
        if was_connected:
            task = asyncio.create_task(relay.run())
            before = await stage(sessions, 1)
            await received.until(1, timeout=5)
            assert received.ids == before
        await proxy.stop()  # refuses new connections and cuts the relay's open one
        caplog.clear()
        during = await stage(sessions, 4, start=1)
        task = task or asyncio.create_task(relay.run())
        for n in range(5, 35):  # a row a tenth of a second, each with its NOTIFY
            during += await stage(sessions, 1, start=n)
            await asyncio.sleep(0.1)
        assert received.ids == before
        warnings = [r for r in caplog.records if r.name == "payhara.relay" and r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]  # one per outage, not one per row
        assert relay.outage_tries <= 5, f"{relay.outage_tries} tries in 3 s: a NOTIFY cut the backoff short"
        async with sessions() as session:
            waiting = (await session.execute(select(outbox).where(outbox.c.sent_at.is_(None)))).all()
        assert sorted(str(r.event_id) for r in waiting) == sorted(during)
        if was_connected:  # the first rows were claimed and tried: each failure is on record
            tried = {str(r.event_id): r for r in waiting if r.attempts >= 1 and r.last_error}
            assert set(during[:4]) <= set(tried)
        assert not task.done()

        await proxy.start()
        await received.until(len(before + during), timeout=30)
        await asyncio.sleep(1.0)
        assert sorted(received.ids) == sorted(before + during)  # each once: no duplicate, none missing
        assert await unsent(sessions) == 0
        assert any("publishing again after" in r.getMessage() for r in caplog.records
                   if r.name == "payhara.relay"), "no summary at the end"
    finally:
        if task is not None:
            await stop(task)
        await proxy.stop()


async def test_unroutable_event_is_an_error_and_the_rest_still_go(desk, sessions, received):
    orphan = await stage_unroutable(sessions)
    ids = await stage(sessions, 2)
    relay = OutboxRelay(outbox, sessions, desk)
    try:
        assert await relay.publish_batch() == (2, 1)
    finally:
        await relay.close()
    await received.until(2, timeout=5)
    assert sorted(received.ids) == sorted(ids)
    async with sessions() as session:
        row = (await session.execute(select(outbox).where(outbox.c.event_id == orphan.event_id))).one()
    assert row.sent_at is None
    assert row.attempts == 1
    assert "NO_ROUTE" in row.last_error
    assert await unsent(sessions) == 1


async def test_two_relays_side_by_side_publish_each_row_once(desk, sessions, received):
    ids = []
    for start in range(0, 200, 50):
        ids += await stage(sessions, 50, start)
    settings = desk.model_copy(update={"relay_batch": 20})
    engines = [make_engine(settings, pool_size=2) for _ in range(2)]
    relays = [OutboxRelay(outbox, make_sessions(e), settings) for e in engines]

    async def drain(relay: OutboxRelay) -> None:
        for _ in range(50):
            sent, failed = await relay.publish_batch()
            assert failed == 0
            if sent == 0:
                return

    try:
        await asyncio.wait_for(asyncio.gather(*(drain(r) for r in relays)), timeout=60)
    finally:
        for relay, engine in zip(relays, engines):
            await relay.close()
            await engine.dispose()
    await received.until(200, timeout=10)
    await asyncio.sleep(1.0)
    duplicates = len(received.ids) - len(set(received.ids))
    print(f"two relays: published {[r.published for r in relays]}, duplicates {duplicates}")
    assert set(received.ids) == set(ids)
    assert duplicates == 0
    assert all(r.published > 0 for r in relays), "one relay did all the work: they did not run side by side"
    assert sum(r.published for r in relays) == 200
    assert await unsent(sessions) == 0


class GatedRelay(OutboxRelay):
    """Holds every publish until the test opens the gate, to place a commit inside a batch."""

    def __init__(self, *args):
        super().__init__(*args)
        self.gate, self.publishing = asyncio.Event(), asyncio.Event()

    async def _publish(self, exchange, row) -> None:
        self.publishing.set()
        await self.gate.wait()
        await super()._publish(exchange, row)


async def test_a_commit_during_a_batch_is_not_left_for_the_poll(desk, sessions, received):
    relay = GatedRelay(outbox, sessions, desk.model_copy(update={"relay_poll_s": 60.0}))
    task = await listening(sessions, relay)
    try:
        first = await stage(sessions, 1)
        await asyncio.wait_for(relay.publishing.wait(), 5)
        second = await stage(sessions, 1, start=1)  # its NOTIFY arrives while the batch is open
        await asyncio.sleep(0.5)
        relay.gate.set()
        await received.until(2, timeout=5)
        assert sorted(received.ids) == sorted(first + second)
    finally:
        await stop(task)


async def test_an_unroutable_row_does_not_slow_down_the_others(desk, sessions, received):
    orphan = await stage_unroutable(sessions)
    task = asyncio.create_task(OutboxRelay(outbox, sessions, desk.model_copy(update={"relay_poll_s": 60.0})).run())
    try:
        for _ in range(150):  # four failed tries in a row
            async with sessions() as session:
                if await session.scalar(select(outbox.c.attempts).where(outbox.c.event_id == orphan.event_id)) >= 4:
                    break
            await asyncio.sleep(0.1)
        ids = await stage(sessions, 1)
        elapsed = await received.until(1, timeout=3)
        assert received.ids == ids, f"a good event waited {elapsed:.1f} s behind an unroutable one"
    finally:
        await stop(task)
