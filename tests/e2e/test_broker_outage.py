"""A consumer service whose broker goes away reports itself not ready, a service that serves
people (console, intake) stays ready and says the broker is away, and the consumers come back by
themselves when the broker returns: no restart, no lost event."""
import asyncio
import time
import uuid

import aio_pika
import httpx
from sqlalchemy import text

from shared import events as ev
from shared.db import make_engine
from shared.topology import EVENTS_EXCHANGE
from tests.tcp_proxy import AmqpProxy
from tests.support import DeskProcesses


async def readiness(url: str) -> int:
    async with httpx.AsyncClient(timeout=3) as client:
        try:
            return (await client.get(url + "/readyz")).status_code
        except httpx.HTTPError:
            return 0


async def degraded(url: str) -> list[str]:
    async with httpx.AsyncClient(timeout=3) as client:
        return (await client.get(url + "/readyz")).json()["degraded"]


async def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def publish_task(amqp_url: str, receipt_no: str) -> None:
    task = ev.TaskIssued(
        task_id=uuid.uuid4(), consultation_id=uuid.uuid4(), receipt_no=receipt_no,
        kind="review", reason="unknown_member", consultant_name="見本", contact=ev.Contact(method="phone", phone="0312345678"),
        category="in_person", summary="試験", urls=[],
    )
    envelope = ev.wrap(task, task.consultation_id)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE)
        await exchange.publish(
            aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.event_id),
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=task.routing_key, mandatory=True,
        )


async def test_consumers_come_back_after_the_broker_returns(desk, tmp_path):
    proxy = AmqpProxy.in_front_of(desk.amqp_url)
    await proxy.start()
    processes = DeskProcesses(desk, tmp_path, PAYHARA_AMQP_URL=proxy.url(desk.amqp_url))
    engine = make_engine(desk, pool_size=1)
    try:
        for service in ("console", "eligibility"):
            processes.start(service)
            await asyncio.to_thread(processes.wait_ready, service)
        console, eligibility = processes.url("console"), processes.url("eligibility")

        await proxy.stop()  # the broker "goes away" for these services only
        await wait_until(lambda: _is(readiness(eligibility), 503), 30, "eligibility to report not ready")
        assert await readiness(console) == 200, "operators keep working while the broker is away"
        assert "broker" in await degraded(console)

        await publish_task(desk.amqp_url, "PH-261124-77777")  # sent while the service is cut off

        await proxy.start()
        await wait_until(lambda: _is(readiness(eligibility), 200), 60, "eligibility to be ready again")
        await wait_until(lambda: _empty(degraded(console)), 60, "the console's consumers to be back")

        async def recorded():
            async with engine.connect() as conn:
                return await conn.scalar(
                    text("select count(*) from console.tasks where receipt_no = 'PH-261124-77777'"))

        assert await wait_until(recorded, 30, "the task sent during the outage") == 1
        assert processes.processes["console"].poll() is None, "the service must not have restarted"
    finally:
        processes.stop_all()
        await proxy.stop()
        await engine.dispose()


async def _is(status_coroutine, expected: int) -> bool:
    return await status_coroutine == expected


async def _empty(list_coroutine) -> bool:
    return not await list_coroutine
