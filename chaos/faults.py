"""The faults, each a coroutine that runs beside the load and returns once the desk has been given
back what it lost (a restarted service ready, a server started again). Blocking steps (killing,
waiting for readiness, pg_ctl, rabbitmqctl) run in a thread so the load keeps its schedule.
"""
import asyncio
import time
import uuid
from dataclasses import dataclass, field

import aio_pika
import asyncpg

from chaos.desk import ChaosDesk
from chaos.servers import PrivateServers
from services.subscriptions import SUBSCRIPTIONS
from shared.topology import EVENTS_EXCHANGE

RESTART_AFTER_S = 3.0  # a supervisor or an orchestrator brings a dead service back within seconds
POISON_KEYS = ("consultation.received.v1", "eligibility.confirmed.v1", "callback.scheduled.v1", "task.issued.v1")


@dataclass
class Fault:
    """What a fault needs and what it leaves for the report."""

    desk: ChaosDesk
    servers: PrivateServers
    dsn: str
    scale: float
    poison_ids: set[str] = field(default_factory=set)
    poison_expected: int = 0  # DLQ entries the poison should make (one per queue it reaches)
    notes: list[str] = field(default_factory=list)

    def outage_s(self, seconds: float) -> float:
        return max(5.0, seconds * self.scale)


async def kill_and_restart(fault: Fault, service: str) -> None:
    """kill -9 of a service (every process of it), back after a few seconds."""
    await asyncio.to_thread(fault.desk.kill_hard, service)
    await asyncio.sleep(RESTART_AFTER_S)
    await asyncio.to_thread(fault.desk.restart, service)


async def postgres_outage(fault: Fault, seconds: float = 60) -> None:
    """pg_ctl stop -m fast (sessions cut, as a failover would), then start after `seconds`."""
    down = fault.outage_s(seconds)
    await asyncio.to_thread(fault.servers.postgres.stop, "fast")
    await asyncio.sleep(down)
    await asyncio.to_thread(fault.servers.postgres.start)
    fault.notes.append(f"postgres down {down:.0f} s")


async def rabbitmq_outage(fault: Fault, seconds: float = 60) -> None:
    """The broker node stopped and started again on the same data: durable quorum queues stay."""
    down = fault.outage_s(seconds)
    started = time.monotonic()
    await asyncio.to_thread(fault.servers.rabbit.stop)
    await asyncio.sleep(max(0.0, down - (time.monotonic() - started)))
    await asyncio.to_thread(fault.servers.rabbit.start)
    fault.notes.append(f"rabbitmq down {time.monotonic() - started:.0f} s")


async def sigterm_everything(fault: Fault) -> None:
    """SIGTERM to every service at once, then all of them started again."""
    await asyncio.to_thread(fault.desk.terminate_services)
    await asyncio.sleep(RESTART_AFTER_S)
    await asyncio.to_thread(fault.desk.start_services)


def _poison_bodies(routing_key: str) -> list[bytes]:
    envelope = ('{"event_id": "%s", "event_type": "%s", "occurred_at": "2026-11-24T10:00:00+00:00", '
                '"correlation_id": "%s", "schema_version": 1, "data": %s}')
    return [
        b"\xff\xfe this is not JSON {",  # not JSON, not even UTF-8
        b'{"hello": "world", "list": [1, 2, 3]}',  # JSON of the wrong shape
        (envelope % (uuid.uuid4(), routing_key, uuid.uuid4(), '{"consultation_id": 42}')).encode(),  # right
        # envelope, data of the wrong shape
    ]


async def publish_poison(fault: Fault) -> None:
    """A few malformed messages on the desk's own exchange, on keys its services consume."""
    consumers = {key: sum(1 for events in SUBSCRIPTIONS.values() for e in events if e.routing_key == key)
                 for key in POISON_KEYS}
    connection = await aio_pika.connect(fault.servers.rabbit.url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
        for key in POISON_KEYS:
            for body in _poison_bodies(key):
                message_id = f"poison-{uuid.uuid4()}"
                await exchange.publish(
                    aio_pika.Message(body, message_id=message_id, content_type="application/json",
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=key, mandatory=True, timeout=10)
                fault.poison_ids.add(message_id)
                fault.poison_expected += consumers[key]
    fault.notes.append(f"{len(fault.poison_ids)} poison messages published")


async def kill_notifier_mid_batch(fault: Fault, kills: int = 3, look_s: float = 15.0) -> None:
    """kill -9 of the notifier while an acknowledgement batch is between its `sending` commit and
    its `sent` commit (a notification row appears in `sending`): the crash window of guarantee 4."""
    connection = await asyncpg.connect(fault.dsn, timeout=5)
    caught, stale, rounds = 0, set(), max(1, round(kills * max(fault.scale, 0.34)))
    try:
        for _ in range(rounds):
            deadline = time.monotonic() + look_s
            while time.monotonic() < deadline:
                sending = {r[0] for r in await connection.fetch(
                    "SELECT id FROM notifier.notifications WHERE status = 'sending'")}
                if sending - stale:  # a batch of its own, not the rows the last kill left behind
                    await asyncio.to_thread(fault.desk.kill_hard, "notifier")
                    caught += 1
                    stale = sending
                    break
                await asyncio.sleep(0.005)
            else:
                await asyncio.to_thread(fault.desk.kill_hard, "notifier")  # no batch seen: kill anyway
            await asyncio.sleep(RESTART_AFTER_S)
            await asyncio.to_thread(fault.desk.restart, "notifier")
            await asyncio.sleep(2.0)
    finally:
        await connection.close()
    fault.notes.append(f"notifier killed {rounds}×, {caught} of them with a batch in `sending`")
