"""What an experiment counts, read from where the desk keeps it, never from the desk's own metrics:
the console's tasks, the bookings and the notifier's tasks (duplicated effects), the SMTP sink's
mail directory (acknowledgement e-mails by Message-ID) and the dead-letter queues.

Every experiment runs on a freshly created database, broker topology and mail directory, so
whatever is found belongs to it.
"""
import asyncio
import email.policy
import json
import time
from collections import Counter
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path

import aio_pika
import asyncpg

from services.subscriptions import SUBSCRIPTIONS
from shared.topology import REASON_HEADER, SERVICES, dead_letter_queue_name, queue_name

CONTACT_TASKS = ("call", "email")  # what a booked consultation ends in for the operators
ACK_PREFIX = "<acknowledgement."
SCHEMAS = SERVICES  # each service owns the schema of its name, and each has an outbox


def consumer_queues() -> list[str]:
    return [queue_name(service, event) for service, events in SUBSCRIPTIONS.items() for event in events]


async def contact_tasks(dsn: str) -> Counter:
    """consultation id -> call-or-email tasks in the console's task view."""
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await connection.fetch("SELECT consultation_id::text AS c, count(*) AS n FROM console.tasks "
                                      "WHERE kind = ANY($1::text[]) GROUP BY consultation_id", list(CONTACT_TASKS))
    finally:
        await connection.close()
    return Counter({row["c"]: row["n"] for row in rows})


# a call task per attempt is one effect each; the experiments record no call outcomes, so every
# task is attempt 1 and the console's view (which keeps no attempt) is counted per consultation
DUPLICATES = {
    "bookings": "SELECT consultation_id::text FROM scheduler.bookings GROUP BY 1 HAVING count(*) > 1",
    "notifier tasks": "SELECT consultation_id::text FROM notifier.tasks WHERE kind = ANY($1::text[]) "
                      "GROUP BY consultation_id, attempt HAVING count(*) > 1",
    "console tasks": "SELECT consultation_id::text FROM console.tasks WHERE kind = ANY($1::text[]) "
                     "GROUP BY 1 HAVING count(*) > 1",
}


async def duplicated_effects(dsn: str) -> dict[str, set[str]]:
    """Where an effect happened more than once: table -> consultation ids (all consultations)."""
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        found = {}
        for table, query in DUPLICATES.items():
            args = [list(CONTACT_TASKS)] if "$1" in query else []
            found[table] = {row[0] for row in await connection.fetch(query, *args)}
    finally:
        await connection.close()
    return found


async def unsent_outbox_rows(dsn: str) -> int:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        return sum([await connection.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL")
                    for schema in SCHEMAS])
    finally:
        await connection.close()


async def flagged_duplicate_mails(dsn: str) -> int | None:
    """How many repeated acknowledgements the notifier itself put on record, where its schema
    keeps them (notifier.possible_duplicates); None where it does not."""
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        if not await connection.fetchval("SELECT to_regclass('notifier.possible_duplicates') IS NOT NULL"):
            return None
        return await connection.fetchval("SELECT count(*) FROM notifier.possible_duplicates")
    finally:
        await connection.close()


def acknowledgements(mail_dir: Path) -> Counter:
    """consultation id -> acknowledgement e-mails the sink kept (the Message-ID names it)."""
    found: Counter = Counter()
    parser = BytesHeaderParser(policy=email.policy.compat32)
    for path in mail_dir.glob("*.eml") if mail_dir.is_dir() else ():
        message_id = "".join(str(parser.parsebytes(path.read_bytes()).get("Message-ID", "")).split())
        if message_id.startswith(ACK_PREFIX):
            found[message_id[len(ACK_PREFIX):].split("@", 1)[0]] += 1
    return found


def queue_depths(rabbit) -> dict[str, int]:
    """queue -> messages, ready and unacknowledged alike (a consumer holding a batch counts)."""
    listing = json.loads(rabbit.ctl("list_queues", "name", "messages", "-q", "--formatter", "json"))
    return {row["name"]: int(row["messages"]) for row in listing}


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    reason: str


async def dead_letters(amqp_url: str, limit_per_queue: int = 5000) -> list[DeadLetter]:
    """Every message in every DLQ, looked at without taking it: basic.get without an ack, then
    the channel closes and each goes back to its place."""
    found = []
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        for queue in consumer_queues():
            dlq_name = dead_letter_queue_name(queue)
            channel = await connection.channel()
            dlq = await channel.get_queue(dlq_name, ensure=False)
            for _ in range(limit_per_queue):
                message = await dlq.get(no_ack=False, fail=False, timeout=10)
                if message is None:
                    break
                reason = message.headers.get(REASON_HEADER) or _broker_reason(message.headers)
                if isinstance(reason, bytes):
                    reason = reason.decode(errors="replace")
                found.append(DeadLetter(dlq_name, str(message.message_id), str(reason)[:120]))
            await channel.close()
    return found


def _broker_reason(headers: dict) -> str:
    deaths = headers.get("x-death") or []
    if not deaths:
        return "no reason given"
    reason = deaths[0].get("reason")
    return f"broker: {reason.decode() if isinstance(reason, bytes) else reason}"


async def wait_until(check, timeout_s: float, every_s: float = 1.0):
    """Poll `check()` (a coroutine function) until it returns something true or time runs out;
    returns its last value either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(every_s)
