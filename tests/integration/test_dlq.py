"""`payhara dlq list` and `payhara dlq replay` on the real RabbitMQ: dead letters of both kinds
(the desk's own, with its reason headers, and the broker's, with x-death) are counted and
explained without being moved; a replay moves exactly what it was asked to, to the one consumer
queue, each message as it was but for the replay count; and replaying an event already applied
changes nothing, thanks to the consumer's inbox."""
import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import aio_pika
import pytest
from sqlalchemy import func, select

from services import cli, dead_letters
from services.console.orm import inbox, tasks
from services.console.tasks import CONSUMER, record_tasks
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from shared.settings import get_settings
from shared.topology import (
    DEAD_LETTER_EXCHANGE, DELIVERIES_HEADER, FAILED_AT_HEADER, FAILED_QUEUE_HEADER, REASON_HEADER,
    REPLAYED_HEADER, dead_letter_queue_name, queue_name,
)

CONSOLE = queue_name("console", ev.TaskIssued)
# consultation.received.v1 has two consumers: a replay to one must not reach the other
NOTIFIER = queue_name("notifier", ev.ConsultationReceived)
ELIGIBILITY = queue_name("eligibility", ev.ConsultationReceived)
MALFORMED = "malformed: data.task_id: uuid_parsing"
FAILED = "handler failed 6 times: IntegrityError"
SECRET_NAME = "秘密 花子"  # personal data in a body: never in any output


@pytest.fixture
async def channel(desk):
    connection = await aio_pika.connect(desk.amqp_url, timeout=10)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    for dlq, queue in dead_letters.dead_letter_queues().items():
        for name in (dlq, queue):
            await (await channel.get_queue(name)).purge()
    yield channel
    await connection.close()


def task_issued() -> ev.Envelope:
    event = ev.TaskIssued(
        task_id=uuid.uuid4(), consultation_id=uuid.uuid4(), receipt_no="PH-261124-00001", kind="call",
        consultant_name=SECRET_NAME, contact=ev.Contact(method="phone", phone="0312345678"),
        category="online", summary="口コミ欄に悪質な投稿",
    )
    return ev.wrap(event, event.consultation_id)


def message_of(envelope: ev.Envelope, headers: dict | None = None) -> aio_pika.Message:
    return aio_pika.Message(
        envelope.model_dump_json().encode(), message_id=str(envelope.event_id),
        correlation_id=str(envelope.correlation_id), content_type="application/json",
        type=envelope.event_type, headers=headers or {}, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def dead_letter_by_the_desk(channel, queue: str, reason: str, failed_at: datetime,
                                  envelope: ev.Envelope | None = None, **headers) -> ev.Envelope:
    """As the desk's consumer does it: published to the DLX with why, from where, when."""
    envelope = envelope or task_issued()
    dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
    desk_headers = {REASON_HEADER: reason, FAILED_QUEUE_HEADER: queue, DELIVERIES_HEADER: 6,
                    FAILED_AT_HEADER: failed_at.isoformat(timespec="seconds")} | headers
    await dlx.publish(message_of(envelope, desk_headers), routing_key=dead_letter_queue_name(queue), mandatory=True)
    return envelope


async def dead_letter_by_the_broker(channel, queue: str) -> ev.Envelope:
    """Rejected without requeue from the consumer queue: the broker dead-letters it with x-death."""
    envelope = task_issued()
    dead = await count(channel, dead_letter_queue_name(queue))
    await channel.default_exchange.publish(message_of(envelope), routing_key=queue, mandatory=True)
    message = await (await channel.get_queue(queue)).get(no_ack=False, timeout=5)
    assert message.message_id == str(envelope.event_id)
    await message.reject(requeue=False)
    assert await until_count(channel, dead_letter_queue_name(queue), dead + 1) == dead + 1
    return envelope


async def count(channel, queue: str) -> int:
    declared = await channel.declare_queue(queue, passive=True)
    return declared.declaration_result.message_count


async def until_count(channel, queue: str, expected: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while (found := await count(channel, queue)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return found


async def take_all(channel, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    source, taken = await channel.get_queue(queue), []
    while (message := await source.get(no_ack=True, fail=False)) is not None:
        taken.append(message)
    return taken


def by_queue(found: list[dead_letters.DeadLetterQueue]) -> dict[str, dead_letters.DeadLetterQueue]:
    return {dlq.queue: dlq for dlq in found}


async def test_list_explains_both_kinds_of_dead_letter_and_leaves_every_one_in_place(desk, channel):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    rejected = await dead_letter_by_the_broker(channel, CONSOLE)
    after = datetime.now(timezone.utc)
    long_ago = datetime(2026, 11, 20, 1, 2, 3, tzinfo=timezone.utc)
    ours = [await dead_letter_by_the_desk(channel, CONSOLE, MALFORMED, long_ago + timedelta(hours=1)),
            await dead_letter_by_the_desk(channel, CONSOLE, MALFORMED, long_ago),
            await dead_letter_by_the_desk(channel, CONSOLE, FAILED, long_ago + timedelta(days=1))]
    # the broker alone: its oldest comes from x-death
    await dead_letter_by_the_broker(channel, NOTIFIER)
    assert await until_count(channel, dead_letter_queue_name(CONSOLE), 4) == 4

    found = by_queue(await dead_letters.list_dead_letters(desk.amqp_url))

    assert set(found) == set(dead_letters.dead_letter_queues())
    console = found[dead_letter_queue_name(CONSOLE)]
    assert (console.count, console.peeked, console.capped) == (4, 4, False)
    assert console.consumer_queue == CONSOLE
    assert console.reasons == {MALFORMED: 2, FAILED: 1, "rejected": 1}
    assert console.oldest == long_ago
    notifier = found[dead_letter_queue_name(NOTIFIER)]
    assert (notifier.count, notifier.reasons) == (1, {"rejected": 1})
    assert before <= notifier.oldest <= after
    others = [dlq for name, dlq in found.items() if name not in (console.queue, notifier.queue)]
    assert others and all((dlq.count, dlq.reasons, dlq.oldest) == (0, {}, None) for dlq in others)

    # nothing taken, nothing reordered: listed twice, then drained, in the order they died
    await dead_letters.list_dead_letters(desk.amqp_url)
    assert await count(channel, console.queue) == 4
    left = await take_all(channel, console.queue)
    assert [m.message_id for m in left] == [str(e.event_id) for e in [rejected, *ours]]
    assert len(await take_all(channel, notifier.queue)) == 1


async def test_list_peeks_at_most_the_cap_and_says_so(desk, channel):
    dlq = dead_letter_queue_name(CONSOLE)
    for _ in range(5):
        await dead_letter_by_the_desk(channel, CONSOLE, FAILED, datetime.now(timezone.utc))

    found = by_queue(await dead_letters.list_dead_letters(desk.amqp_url, peek_limit=3))[dlq]

    assert (found.count, found.peeked, found.capped, found.reasons) == (5, 3, True, {FAILED: 3})
    assert "(reasons and oldest from the first 3 of 5 only)" in cli._dead_letter_report([found])
    assert await count(channel, dlq) == 5


async def test_replay_moves_exactly_the_limit_to_the_one_consumer_queue_as_it_was(desk, channel):
    dlq = dead_letter_queue_name(NOTIFIER)
    died = datetime.now(timezone.utc)
    again = await dead_letter_by_the_desk(channel, NOTIFIER, FAILED, died, **{REPLAYED_HEADER: 1})
    first = await dead_letter_by_the_desk(channel, NOTIFIER, FAILED, died)
    stays = await dead_letter_by_the_desk(channel, NOTIFIER, FAILED, died)

    replayed = await dead_letters.replay(desk.amqp_url, NOTIFIER, limit=2)

    assert (replayed.moved, replayed.waiting, replayed.queue, replayed.consumer_queue) == (2, 3, dlq, NOTIFIER)
    arrived = await take_all(channel, NOTIFIER)
    assert [m.message_id for m in arrived] == [str(again.event_id), str(first.event_id)]
    for message, envelope, times in zip(arrived, (again, first), (2, 1)):
        assert message.body == envelope.model_dump_json().encode()
        assert (message.correlation_id, message.content_type, message.type) == (
            str(envelope.correlation_id), "application/json", ev.TaskIssued.routing_key)
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers[REPLAYED_HEADER] == times
        assert message.headers[REASON_HEADER] == FAILED  # the history stays with it
    assert await count(channel, ELIGIBILITY) == 0, "a replay reached another service's queue"
    assert [m.message_id for m in await take_all(channel, dlq)] == [str(stays.event_id)]


async def test_replay_by_the_dlq_name_moves_all_that_were_there(desk, channel):
    dlq = dead_letter_queue_name(CONSOLE)
    ids = {str((await dead_letter_by_the_desk(channel, CONSOLE, MALFORMED, datetime.now(timezone.utc))).event_id)
           for _ in range(3)}
    await dead_letter_by_the_broker(channel, CONSOLE)
    replayed = await dead_letters.replay(desk.amqp_url, dlq)
    assert (replayed.moved, replayed.waiting) == (4, 4)
    assert await count(channel, dlq) == 0
    arrived = await take_all(channel, CONSOLE)
    assert ids < {m.message_id for m in arrived} and len(arrived) == 4
    assert all("x-death" in m.headers for m in arrived if m.message_id not in ids)


async def test_replay_stops_at_what_was_there_when_messages_come_straight_back(desk, channel):
    """A consumer that still rejects everything: without the bound, the replay would never end."""
    dlq = dead_letter_queue_name(CONSOLE)
    for _ in range(3):
        await dead_letter_by_the_desk(channel, CONSOLE, FAILED, datetime.now(timezone.utc))
    bounced = 0

    async def reject(message):
        nonlocal bounced
        bounced += 1
        await message.reject(requeue=False)

    connection = await aio_pika.connect(desk.amqp_url, timeout=10)
    async with connection:
        consumer = await connection.channel()
        await (await consumer.get_queue(CONSOLE)).consume(reject)
        replayed = await asyncio.wait_for(dead_letters.replay(desk.amqp_url, CONSOLE), timeout=20)
        assert await until_count(channel, dlq, 3) == 3
    assert (replayed.moved, bounced) == (3, 3)


async def test_a_publish_that_fails_puts_the_message_back_and_stops(desk, channel):
    from shared.topology import EVENTS_EXCHANGE, queue_arguments

    dlq = dead_letter_queue_name(CONSOLE)
    ids = [str((await dead_letter_by_the_desk(channel, CONSOLE, FAILED, datetime.now(timezone.utc))).event_id)
           for _ in range(2)]
    await channel.queue_delete(CONSOLE)  # unroutable: the mandatory publish comes back
    try:
        with pytest.raises(dead_letters.ReplayFailed) as failed:
            await dead_letters.replay(desk.amqp_url, CONSOLE)
    finally:
        queue = await channel.declare_queue(CONSOLE, durable=True,
                                            arguments=queue_arguments(CONSOLE, desk.delivery_limit))
        await queue.bind(EVENTS_EXCHANGE, routing_key=ev.TaskIssued.routing_key)
    assert failed.value.moved == 0 and failed.value.message_id == ids[0]
    assert "back in the DLQ" in str(failed.value)
    assert [m.message_id for m in await take_all(channel, dlq)] == ids  # in place, in order


async def test_replaying_an_unknown_queue_is_an_error_naming_the_known_ones(desk, channel, capsys, monkeypatch):
    with pytest.raises(dead_letters.UnknownQueue) as unknown:
        await dead_letters.replay(desk.amqp_url, "console.task.cancelled.v1")
    assert dead_letter_queue_name(CONSOLE) in unknown.value.known

    _use_the_desk(monkeypatch, desk)
    assert await asyncio.to_thread(cli.main, ["dlq", "replay", "nope.dlq"]) == 2
    error = capsys.readouterr().err
    assert "unknown queue 'nope.dlq'" in error
    assert all(dlq in error for dlq in dead_letters.dead_letter_queues())


async def test_the_cli_lists_counts_reasons_and_oldest_and_no_personal_data(desk, channel, capsys, monkeypatch):
    await dead_letter_by_the_desk(channel, CONSOLE, MALFORMED, datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc))
    await dead_letter_by_the_desk(channel, CONSOLE, MALFORMED, datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc))
    await dead_letter_by_the_broker(channel, CONSOLE)
    _use_the_desk(monkeypatch, desk)
    capsys.readouterr()

    assert await asyncio.to_thread(cli.main, ["dlq", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert f"{dead_letter_queue_name(CONSOLE)}: 3 dead letters, oldest 2026-11-24 10:00:00 JST" in lines
    assert f"       2  {MALFORMED}" in lines and "       1  rejected" in lines
    empty = len(dead_letters.dead_letter_queues()) - 1
    assert lines[-1].startswith(f"empty ({empty}): ") and dead_letter_queue_name(NOTIFIER) in lines[-1]
    assert SECRET_NAME not in out and "PH-261124" not in out

    assert await asyncio.to_thread(cli.main, ["dlq", "list", "--json"]) == 0
    out = capsys.readouterr().out
    listed = {q["queue"]: q for q in json.loads(out)["dead_letter_queues"]}
    assert listed[dead_letter_queue_name(CONSOLE)] | {"oldest": None} == {
        "queue": dead_letter_queue_name(CONSOLE), "consumer_queue": CONSOLE, "count": 3, "oldest": None,
        "reasons": {MALFORMED: 2, "rejected": 1}, "peeked": 3, "capped": False}
    assert listed[dead_letter_queue_name(CONSOLE)]["oldest"] == "2026-11-24T01:00:00+00:00"
    assert SECRET_NAME not in out
    assert await count(channel, dead_letter_queue_name(CONSOLE)) == 3


async def test_the_cli_replays_and_says_how_many(desk, channel, capsys, monkeypatch):
    for _ in range(3):
        await dead_letter_by_the_desk(channel, CONSOLE, FAILED, datetime.now(timezone.utc))
    _use_the_desk(monkeypatch, desk)
    assert await asyncio.to_thread(cli.main, ["dlq", "replay", CONSOLE, "--limit", "1"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"replayed 1 of 3 from {dead_letter_queue_name(CONSOLE)} to {CONSOLE}")
    assert (await count(channel, CONSOLE), await count(channel, dead_letter_queue_name(CONSOLE))) == (1, 2)


async def test_replaying_an_event_already_applied_is_harmless(desk, channel):
    engine = make_engine(desk, pool_size=2)
    sessions = make_sessions(engine)
    try:
        envelope = task_issued()
        event = ev.TaskIssued.model_validate(envelope.data)
        assert await record_tasks([Delivery(envelope, event)], sessions) == 1  # applied once ...
        # ... and yet dead-lettered (say the ack was lost and a later delivery failed)
        await dead_letter_by_the_desk(channel, CONSOLE, FAILED, datetime.now(timezone.utc), envelope)

        assert (await dead_letters.replay(desk.amqp_url, CONSOLE)).moved == 1
        message = await (await channel.get_queue(CONSOLE)).get(no_ack=False, timeout=5)
        assert message.headers[REPLAYED_HEADER] == 1
        again = Delivery(*ev.unwrap(message.body, ev.TaskIssued))
        assert again.envelope.event_id == envelope.event_id
        assert await record_tasks([again], sessions) == 0
        await message.ack()

        async with sessions() as conn:
            rows = await conn.scalar(select(func.count()).select_from(tasks).where(tasks.c.task_id == event.task_id))
            seen = await conn.scalar(select(func.count()).select_from(inbox).where(
                inbox.c.consumer == CONSUMER, inbox.c.event_id == envelope.event_id))
        assert (rows, seen) == (1, 1)
    finally:
        await engine.dispose()


def _use_the_desk(monkeypatch, desk) -> None:
    monkeypatch.setenv("PAYHARA_AMQP_URL", desk.amqp_url)
    get_settings.cache_clear()
