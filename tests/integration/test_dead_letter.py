"""A real consumer (shared.messaging) on the real RabbitMQ: a bad message goes to the DLQ, at once
when it can never be read, after the delivery limit when its handler keeps failing; the queue
keeps flowing meanwhile, and a failure that passes costs nothing. Each dead letter says why. Batches: a failing batch is
handled again one delivery at a time, so each delivery is seen alone exactly once."""
import asyncio
import json
import time
import uuid
from collections import Counter

import aio_pika
import pytest

from shared import events as ev
from shared.messaging import Consumers
from shared.topology import EVENTS_EXCHANGE, dead_letter_queue_name, queue_name

QUEUE = queue_name("console", ev.TaskIssued)
DLQ = dead_letter_queue_name(QUEUE)


class Console:
    """The console's consumer, with the behaviour each test asks for through the task's reason."""

    def __init__(self):
        self.calls: Counter[str] = Counter()  # handler calls that included the event
        self.alone: Counter[str] = Counter()  # ... with the event alone: one per delivery
        self.handled: list[str] = []

    async def handle(self, deliveries: list) -> None:
        failing = False
        for d in deliveries:
            event_id = str(d.envelope.event_id)
            self.calls[event_id] += 1
            self.alone[event_id] += len(deliveries) == 1
            reason = d.event.reason
            failing |= reason == "fail_always" or (reason == "fail_once" and self.calls[event_id] == 1)
        if failing:
            raise RuntimeError("cannot handle this one")  # the message's fault: requeued, counted
        if any(d.event.reason == "slow" for d in deliveries):
            await asyncio.sleep(0.02)  # a transaction's time: deliveries pile up meanwhile
        self.handled.extend(str(d.envelope.event_id) for d in deliveries)

    def clear(self) -> None:
        for record in (self.calls, self.alone, self.handled):
            record.clear()


@pytest.fixture(scope="module")
async def console(desk):
    consumers = Consumers(desk, "console")
    consumer = Console()
    consumers.on(ev.TaskIssued)(consumer.handle)
    await consumers.start()
    yield consumer
    await consumers.stop()


@pytest.fixture
async def channel(desk, console):
    connection = await aio_pika.connect(desk.amqp_url, timeout=10)
    channel = await connection.channel(publisher_confirms=True)
    for name in (QUEUE, DLQ):
        await (await channel.get_queue(name)).purge()
    console.clear()
    yield channel
    await connection.close()


def task_issued(reason: str) -> ev.Envelope:
    event = ev.TaskIssued(
        task_id=uuid.uuid4(), consultation_id=uuid.uuid4(), receipt_no="R-TEST", kind="call", reason=reason,
        consultant_name="テスト", contact=ev.Contact(method="phone", phone="000"), category="online", summary="-",
    )
    return ev.wrap(event, event.consultation_id)


async def publish(channel, body: bytes, message_id: str) -> None:
    exchange = await channel.get_exchange(EVENTS_EXCHANGE)
    message = aio_pika.Message(body, message_id=message_id, content_type="application/json",
                               delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    await exchange.publish(message, routing_key=ev.TaskIssued.routing_key, mandatory=True)


async def publish_tasks(channel, reason: str, count: int) -> list[str]:
    envelopes = [task_issued(reason) for _ in range(count)]
    for envelope in envelopes:
        await publish(channel, envelope.model_dump_json().encode(), str(envelope.event_id))
    return [str(e.event_id) for e in envelopes]


async def dead_letters(channel, count: int, timeout: float = 10) -> list[aio_pika.abc.AbstractIncomingMessage]:
    queue = await channel.get_queue(DLQ)
    found, deadline = [], time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
        else:
            found.append(message)
    return found


async def until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def reject_and_flow(console, channel, malformed: dict[str, bytes]) -> None:
    """The malformed messages land in the DLQ after one delivery; good ones after them are handled."""
    for message_id, body in malformed.items():
        await publish(channel, body, message_id)
    good = await publish_tasks(channel, "ok", 5)

    rejected = await dead_letters(channel, len(malformed))
    await until(lambda: len(console.handled) >= len(good))

    assert sorted(m.message_id for m in rejected) == sorted(malformed)
    assert sorted(console.handled) == sorted(good)
    assert set(console.calls) == set(good), "the handler must never see a malformed message"
    for message in rejected:
        assert message.body == malformed[message.message_id]  # dead-lettered as it came
        assert message.headers["x-payhara-queue"] == QUEUE
        assert message.headers["x-payhara-reason"].startswith("malformed: "), message.message_id
        assert message.headers["x-payhara-deliveries"] == 1
    assert await dead_letters(channel, 1, timeout=0.5) == []


async def test_messages_of_the_wrong_shape_go_to_the_dlq_at_once_and_the_queue_flows(console, channel):
    ok = task_issued("ok")
    await reject_and_flow(console, channel, {
        "not-an-envelope": json.dumps([1, 2, 3]).encode(),
        "bad-data": ok.model_copy(update={"data": {"task_id": "not-a-uuid"}}).model_dump_json().encode(),
        "wrong-type": ok.model_copy(update={"event_type": "task.cancelled.v1"}).model_dump_json().encode(),
    })


async def test_a_body_that_is_not_json_goes_to_the_dlq_at_once(console, channel):
    await reject_and_flow(console, channel, {"not-json": b"{not json"})


async def test_a_handler_that_keeps_failing_dead_letters_after_the_delivery_limit(desk, console, channel):
    [doomed] = await publish_tasks(channel, "fail_always", 1)
    good = await publish_tasks(channel, "ok", 5)

    [dead] = await dead_letters(channel, 1, timeout=30) or [None]
    await until(lambda: len(console.handled) >= len(good))

    assert dead is not None, "the failing message never reached the DLQ"
    assert dead.message_id == doomed
    # the first delivery plus `delivery_limit` requeues; the last one goes to the DLQ with why
    assert console.alone[doomed] == desk.delivery_limit + 1
    assert dead.headers["x-payhara-reason"] == f"handler failed {desk.delivery_limit + 1} times: RuntimeError"
    assert dead.headers["x-payhara-queue"] == QUEUE
    assert "x-death" not in dead.headers, "dead-lettered by the desk, before the broker's backstop"
    assert sorted(console.handled) == sorted(good)
    await asyncio.sleep(0.5)
    assert console.alone[doomed] == desk.delivery_limit + 1  # and never again


async def test_a_failure_that_passes_is_handled_once_and_not_dead_lettered(console, channel):
    ids = await publish_tasks(channel, "fail_once", 3)
    await until(lambda: len(console.handled) >= len(ids))
    assert sorted(console.handled) == sorted(ids)  # each once
    assert all(console.alone[i] <= 2 for i in ids), "a failure that passed was delivered again"
    calls = dict(console.calls)
    await asyncio.sleep(0.5)
    assert dict(console.calls) == calls, "an acked message came back"
    assert await dead_letters(channel, 1, timeout=0.5) == []
    queue = await channel.declare_queue(QUEUE, passive=True)
    assert queue.declaration_result.message_count == 0


async def test_a_backlog_is_handled_in_batches_each_event_once(console, channel):
    ids = await publish_tasks(channel, "slow", 100)
    await until(lambda: len(console.handled) >= len(ids))
    assert sorted(console.handled) == sorted(ids)
    assert set(console.calls.values()) == {1}, "an event was handled twice"
    assert len(ids) - sum(console.alone.values()) > 0, "the backlog was never taken in batches"
    await asyncio.sleep(0.5)
    queue = await channel.declare_queue(QUEUE, passive=True)
    assert queue.declaration_result.message_count == 0
