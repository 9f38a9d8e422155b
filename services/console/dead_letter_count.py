"""How many messages wait in the desk's dead-letter queues, for the supervisors' view: one passive
declare per DLQ (the broker answers with its count; nothing is taken or peeked), bounded by a
short timeout. None when the broker cannot be asked: the page says so instead of failing."""
import asyncio
import logging

import aio_pika
from aio_pika.exceptions import ChannelNotFoundEntity

from services.dead_letters import dead_letter_queues

log = logging.getLogger("payhara.console")
TIMEOUT_S = 3.0


async def dead_letter_total(amqp_url: str, timeout_s: float = TIMEOUT_S) -> int | None:
    try:
        return await asyncio.wait_for(_count(amqp_url, timeout_s), timeout_s)
    except Exception as error:  # unreachable, refused, timed out: the page shows 取得できません
        log.warning("dead letters not counted: %s", type(error).__name__)
        return None


async def _count(amqp_url: str, timeout_s: float) -> int:
    connection = await aio_pika.connect(amqp_url, timeout=timeout_s)
    async with connection:
        total = 0
        channel = await connection.channel()
        for dlq in dead_letter_queues():
            try:
                queue = await channel.declare_queue(dlq, passive=True)
            except ChannelNotFoundEntity:  # not declared yet: it holds nothing (the broker closed the channel)
                channel = await connection.channel()
                continue
            total += queue.declaration_result.message_count or 0
        return total
