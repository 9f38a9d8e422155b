"""Receipt numbers stay unique when two intake processes take 1,000 submissions at once: each
process takes serials from the shared database sequence a block at a time (ReceiptSerials), and
no number may be given twice, malformed, or shown without its row."""
import asyncio
import re
import time
import uuid
from collections import Counter

import aio_pika
import asyncpg
import httpx
import pytest

from services.intake.receipts import is_well_formed
from services.subscriptions import SUBSCRIPTIONS
from shared import events as ev
from shared.db import libpq_dsn
from shared.topology import queue_name
from tests.support import DeskProcesses, submission

SUBMISSIONS = 1000
IN_FLIGHT = 100
# what intake logs for each receipt it commits (services/intake/consultations.py), at INFO
RECEIVED = re.compile(r"consultation received: receipt=(\S+) id=\S+ channel=web")


@pytest.fixture(scope="module")
async def two_intakes(desk, tmp_path_factory):
    """Two intake processes on their own ports, one log each, so that every answer and every log
    line is known to come from one of them."""
    instances = [DeskProcesses(desk, tmp_path_factory.mktemp(f"intake-{n}"), PAYHARA_WORKERS="{}",
                               PAYHARA_INTAKE_RATE_LIMIT="0", PAYHARA_LOG_LEVEL="INFO") for n in (1, 2)]
    try:
        for instance in instances:
            instance.start("intake")
        for instance in instances:
            await asyncio.to_thread(instance.wait_ready, "intake")
        yield instances
        await _published_then_dropped(desk)
    finally:
        for instance in instances:
            await asyncio.to_thread(instance.stop_all)


async def _published_then_dropped(settings, timeout: float = 30) -> None:
    """Wait for both relays to publish every `received` event, then purge them from the queues of
    eligibility and notifier, which are not running here: a later module's desk must not inherit
    1,000 consultations."""
    connection = await asyncpg.connect(libpq_dsn(settings.database_url))
    try:
        deadline = time.monotonic() + timeout
        while await connection.fetchval("select count(*) from intake.outbox where sent_at is null"):
            assert time.monotonic() < deadline, f"intake's outbox not published within {timeout} s"
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
    broker = await aio_pika.connect(settings.amqp_url, timeout=10)
    async with broker:
        channel = await broker.channel()
        for service, events in SUBSCRIPTIONS.items():
            if ev.ConsultationReceived in events:
                await (await channel.get_queue(queue_name(service, ev.ConsultationReceived))).purge()


async def test_receipt_numbers_are_unique_across_two_intake_processes(two_intakes, desk):
    database = await asyncpg.connect(libpq_dsn(desk.database_url))
    try:
        before = {row["id"] for row in await database.fetch("select id from intake.consultations")}
        gate = asyncio.Semaphore(IN_FLIGHT)
        # idle connections dropped before uvicorn's 5 s keep-alive closes them under our feet
        clients = [httpx.AsyncClient(base_url=instance.url("intake"), timeout=30,
                                     limits=httpx.Limits(max_connections=IN_FLIGHT, keepalive_expiry=2))
                   for instance in two_intakes]

        async def submit(i: int) -> tuple[int, int, dict]:
            process = i % 2  # alternately: both processes take serials from the sequence at once
            key = {"Idempotency-Key": f"receipt-numbers-{uuid.uuid4()}"}
            async with gate:
                for tries in range(3):  # as a careful client does: a dropped connection is sent again,
                    try:                # with its key, so it is never recorded twice
                        response = await clients[process].post("/api/v1/consultations", json=submission(i),
                                                               headers=key)
                        break
                    except httpx.TransportError:
                        if tries == 2:
                            raise
            return process, response.status_code, response.json()

        started = time.monotonic()
        try:
            answers = await asyncio.gather(*(submit(i) for i in range(SUBMISSIONS)))
        finally:
            for client in clients:
                await client.aclose()
        elapsed = time.monotonic() - started
        new_rows = [row for row in await database.fetch("select id, receipt_no from intake.consultations")
                    if row["id"] not in before]
    finally:
        await database.close()

    assert Counter(status for _, status, _ in answers) == {202: SUBMISSIONS}
    receipts = [body["receipt_no"] for _, _, body in answers]
    assert len(set(receipts)) == SUBMISSIONS, f"receipt numbers given twice: {Counter(receipts).most_common(3)}"
    assert [r for r in receipts if not is_well_formed(r)] == []
    serials = Counter(r.split("-")[2][:-1] for r in receipts)  # the sequence's number, whatever the day
    assert len(serials) == SUBMISSIONS, f"serials used twice: {serials.most_common(3)}"
    assert len(new_rows) == SUBMISSIONS
    assert {row["receipt_no"] for row in new_rows} == set(receipts)
    assert {str(row["id"]) for row in new_rows} == {body["consultation_id"] for _, _, body in answers}

    # each process logged, from its own log, exactly the receipts it answered: both took part
    for n, instance in enumerate(two_intakes):
        answered = {body["receipt_no"] for process, _, body in answers if process == n}
        logged = RECEIVED.findall((instance.logs / "intake.log").read_text(encoding="utf-8", errors="replace"))
        assert len(answered) == SUBMISSIONS // 2
        assert sorted(logged) == sorted(answered), f"intake process {n + 1}'s log does not match its answers"
    print(f"{SUBMISSIONS} submissions over two intake processes in {elapsed:.1f} s")
