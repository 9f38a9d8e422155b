"""CPU per consumed message: FastStream's RabbitMQ subscriber against aio-pika's consumer, the
way the desk consumes (quorum queue, prefetch 32, 1 KB JSON bodies). Why shared/messaging.py
consumes with aio-pika directly.

    .venv/bin/python bench/consume.py            # make bench runs it too

Uses a temporary queue in the vhost of PAYHARA_AMQP_URL and deletes it afterwards.
"""
import asyncio
import logging
import os
import resource
import sys
import uuid

import aio_pika
from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage, RabbitQueue

COUNT = 5000
PREFETCH = 32
BODY = b'{"event_type": "task.issued.v1", "data": {"summary": "' + b"x" * 1000 + b'"}}'
STEP_TIMEOUT_S = 120.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def fill(url: str, name: str) -> None:
    async with await aio_pika.connect(url, timeout=10) as connection:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        for _ in range(COUNT):
            await channel.default_exchange.publish(
                aio_pika.Message(BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=name)


async def with_aio_pika(url: str, name: str, batch: int) -> float:
    """Microseconds of CPU per message; acked one by one (batch 1) or `multiple` per batch."""
    async with await aio_pika.connect(url, timeout=10) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.get_queue(name)
        done, received = asyncio.Event(), 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            received += 1
            if received % batch == 0 or received == COUNT:
                await message.ack(multiple=batch > 1)
            if received == COUNT:
                done.set()

        started = cpu_s()
        await queue.consume(on_message)
        await done.wait()
        return (cpu_s() - started) / COUNT * 1e6


async def with_faststream(url: str, name: str) -> float:
    """Microseconds of CPU per message, no middleware, acked by FastStream after the handler."""
    broker = RabbitBroker(url, default_channel=Channel(prefetch_count=PREFETCH), ack_policy=AckPolicy.NACK_ON_ERROR,
                          log_level=logging.DEBUG)  # as the desk had it: no line per message
    done, received = asyncio.Event(), 0

    @broker.subscriber(RabbitQueue(name, durable=True, arguments={"x-queue-type": "quorum"}))
    async def handle(message: RabbitMessage) -> None:
        nonlocal received
        received += 1
        if received == COUNT:
            done.set()

    started = cpu_s()
    await broker.start()
    try:
        await done.wait()
        return (cpu_s() - started) / COUNT * 1e6
    finally:
        await broker.stop()


async def main() -> None:
    url = os.environ.get("PAYHARA_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    name = f"bench.consume.{uuid.uuid4().hex[:8]}"
    runs = [("faststream subscriber", lambda: with_faststream(url, name)),
            ("aio-pika, ack each", lambda: with_aio_pika(url, name, 1)),
            (f"aio-pika, ack per {PREFETCH}", lambda: with_aio_pika(url, name, PREFETCH))]
    try:
        for label, run in runs:
            await fill(url, name)
            print(f"consume: {label:<24}{await asyncio.wait_for(run(), STEP_TIMEOUT_S):>6.0f} us CPU/message",
                  flush=True)
    finally:
        async with await aio_pika.connect(url, timeout=10) as connection:
            await (await connection.channel()).queue_delete(name)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
