"""Raw baselines, measured on this machine in the same run as the pipeline: what RabbitMQ and
PostgreSQL do with nothing of the desk in between, in the shape the desk uses them (persistent
messages to a quorum queue with publisher confirms; one short committed transaction per effect)."""
import asyncio
import time
import uuid

import aio_pika
import asyncpg

STEP_TIMEOUT_S = 120.0  # each measurement gives up after this; the bench never hangs


async def broker_rates(amqp_url: str, count: int = 5000, in_flight: int = 100, size: int = 1024) -> tuple[float, float]:
    """(publish-with-confirm msg/s, consume-with-manual-ack msg/s) through a temporary durable
    quorum queue, at most `in_flight` confirms outstanding and prefetch `in_flight`."""
    name = f"bench.raw.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        try:
            publish_rate = await asyncio.wait_for(_publish(channel, name, count, in_flight, size), STEP_TIMEOUT_S)
            consume_rate = await asyncio.wait_for(_consume(connection, name, count, in_flight), STEP_TIMEOUT_S)
        finally:
            await channel.queue_delete(queue.name)
    return publish_rate, consume_rate


async def _publish(channel, queue: str, count: int, in_flight: int, size: int) -> float:
    body = b"x" * size
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:  # each publish returns only when the broker has confirmed it
            await channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue, timeout=30)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.perf_counter() - started)


async def _consume(connection, queue: str, count: int, prefetch: int) -> float:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    source = await channel.get_queue(queue, ensure=True)
    done = asyncio.Event()
    received = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal received
        await message.ack()
        received += 1
        if received >= count:
            done.set()

    started = time.perf_counter()
    tag = await source.consume(on_message)
    await done.wait()
    elapsed = time.perf_counter() - started
    await source.cancel(tag)
    await channel.close()
    return count / elapsed


async def database_rate(dsn: str, count: int = 5000, connections: int = 8) -> float:
    """Single-row INSERT transactions (BEGIN, INSERT, COMMIT) per second from `connections`
    concurrent connections. A real (logged) table, not a TEMP one: a transaction that wrote
    only temporary tables commits without waiting for the WAL flush, which would flatter the
    figure against the services' tables."""
    table = f"bench_raw_commits_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn, timeout=10)
    try:
        await admin.execute(f"create table {table} (id bigserial primary key, body text not null)")
        pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections, timeout=10)
        try:
            remaining = iter(range(count))

            async def worker() -> None:
                async with pool.acquire() as conn:
                    for _ in remaining:  # one shared iterator: `count` transactions in all
                        async with conn.transaction():
                            await conn.execute(f"insert into {table} (body) values ($1)", "x" * 200)

            started = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), STEP_TIMEOUT_S)
            rate = count / (time.perf_counter() - started)
        finally:
            await pool.close()
        await admin.execute(f"drop table {table}")
    finally:
        await admin.close()
    return rate
