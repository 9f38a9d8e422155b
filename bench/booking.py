"""Booking benchmark: how fast the scheduler books confirmed consultations with 1, 2 and 4
processes, on one hot day (every booking wants the same slots) and spread over many days; and how
long one booking takes to find its slot when the next 30 open days are nearly full.

    make bench                          # also runs this
    .venv/bin/python bench/booking.py --count 1000

The scheduler runs as real processes (`payhara run scheduler`, PAYHARA_WORKERS) on the database
and vhost of PAYHARA_DATABASE_URL / PAYHARA_AMQP_URL (the bench's own, reset here); the events
are published straight onto the broker, as eligibility would.
"""
import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aio_pika  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from services.scheduler.orm import bookings, slots  # noqa: E402
from services.scheduler.slots import slots_of  # noqa: E402
from shared import events as ev  # noqa: E402
from shared.calendar import business_days_from  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.topology import EVENTS_EXCHANGE  # noqa: E402
from tests.support import DeskProcesses, prepare_desk  # noqa: E402

HOT_CAPACITY = 100_000  # every booking fits in the first slot of the first day
SPREAD_CAPACITY = 2  # a day holds a dozen: the bookings spread over weeks


def confirmed(promised: date) -> ev.Envelope:
    event = ev.EligibilityConfirmed(consultation_id=uuid.uuid4(), receipt_no="PH-BENCH-00000",
                                    reason="active_member", contact_expected_from=promised)
    return ev.wrap(event, event.consultation_id)


async def publish(channel, envelopes: list[ev.Envelope]) -> None:
    exchange = await channel.get_exchange(EVENTS_EXCHANGE)
    await asyncio.gather(*(exchange.publish(
        aio_pika.Message(e.model_dump_json().encode(), message_id=str(e.event_id),
                         delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=ev.EligibilityConfirmed.routing_key, mandatory=True) for e in envelopes))


async def booked(engine, ids) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(bookings).where(bookings.c.consultation_id.in_(ids)))


async def run_scheduler(settings: Settings, workdir: Path, workers: int, capacity: int, body) -> float:
    """Start the scheduler with `workers` processes, run `body(engine, channel)`, stop it."""
    engine = make_engine(settings, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text("truncate scheduler.bookings, scheduler.slots, scheduler.inbox, scheduler.outbox, "
                                "scheduler.roster, scheduler.email_days cascade"))
    processes = DeskProcesses(settings, workdir, PAYHARA_WORKERS=f'{{"scheduler": {workers}}}',
                              PAYHARA_SLOT_CAPACITY=str(capacity), PAYHARA_BOOKING_HORIZON_DAYS="400",
                              PAYHARA_URGENT_SEATS_ONE_IN="0",  # every seat for every booking, as measured before
                              PAYHARA_LOG_LEVEL="WARNING")
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        processes.start("scheduler")
        await asyncio.to_thread(processes.wait_ready, "scheduler")
        channel = await connection.channel(publisher_confirms=True)
        return await body(engine, channel)
    finally:
        await connection.close()
        processes.stop_all()
        await engine.dispose()


def throughput(count: int, promised: date):
    async def body(engine, channel) -> float:
        envelopes = [confirmed(promised) for _ in range(count)]
        ids = [e.correlation_id for e in envelopes]
        started = time.monotonic()
        await publish(channel, envelopes)
        while await booked(engine, ids) < count:
            if time.monotonic() - started > 300:
                raise TimeoutError("bookings did not complete within 300 s")
            await asyncio.sleep(0.05)
        return count / (time.monotonic() - started)
    return body


def nearly_full(promised: date, capacity: int, samples: int):
    """Every slot of the next 30 open days full but for the last slot of the 30th, which has
    `samples` seats: each booking has to look through 30 days to find its seat."""
    async def body(engine, channel) -> float:
        days = list(islice(business_days_from(promised), 30))
        rows = [{"starts_at": s, "ends_at": e, "capacity": capacity, "booked": capacity}
                for day in days for s, e in slots_of(day)]
        rows[-1].update(capacity=samples, booked=0)
        async with engine.begin() as conn:
            await conn.execute(insert(slots), rows)
        latencies = []
        for _ in range(samples):  # one at a time: the time one booking takes, not a batch's
            envelope = confirmed(promised)
            started = time.monotonic()
            await publish(channel, [envelope])
            while not await booked(engine, [envelope.correlation_id]):
                await asyncio.sleep(0.002)
            latencies.append((time.monotonic() - started) * 1000)
        return statistics.median(latencies)
    return body


async def main(count: int) -> None:
    settings = Settings()
    await prepare_desk(settings)
    promised = date.today() + timedelta(days=2)
    print(f"bench: scheduler bookings, {count} consultations confirmed at once; database {settings.database_url.rsplit('/', 1)[-1]}")
    with tempfile.TemporaryDirectory(prefix="payhara-bench-booking-") as workdir:
        results = {}
        for workers in (1, 2, 4):
            for name, capacity in (("one hot day", HOT_CAPACITY), ("spread over days", SPREAD_CAPACITY)):
                rate = await run_scheduler(settings, Path(workdir) / f"{workers}-{capacity}", workers, capacity,
                                           throughput(count, promised))
                results[(workers, name)] = rate
                print(f"  {workers} scheduler process(es), {name:16}: {rate:7.0f} bookings/s", flush=True)
        median_ms = await run_scheduler(settings, Path(workdir) / "full", 1, 4, nearly_full(promised, 4, 20))
        print(f"  next 30 open days nearly full: a booking finds its slot in {median_ms:.0f} ms (median of 20, "
              f"publish to booking row)")
    line = ", ".join(f"{w}p {results[(w, 'one hot day')]:.0f}/{results[(w, 'spread over days')]:.0f}" for w in (1, 2, 4))
    print(f"booking: bookings/s hot day/spread {line}; nearly full 30 days {median_ms:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    asyncio.run(main(parser.parse_args().count))
