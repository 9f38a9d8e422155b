"""Four scheduler processes and 1,000 consultations confirmed at once, on the real broker and
database: no slot over its capacity, each consultation booked exactly once, every seat taken
accounted for by a booking."""
import asyncio
import time
import uuid
from datetime import date, timedelta

import aio_pika
from sqlalchemy import func, select, text

from services.scheduler.orm import bookings, slots
from shared import events as ev
from shared.db import make_engine
from shared.topology import EVENTS_EXCHANGE
from tests.support import DeskProcesses

CONSULTATIONS = 1000
CAPACITY = 12  # 72 seats a day: the batches race for the same hot days and spill over to the next


def confirmed(n: int, promised: date) -> ev.Envelope:
    event = ev.EligibilityConfirmed(consultation_id=uuid.uuid4(), receipt_no=f"PH-261130-{n:05d}",
                                    reason="active_member", contact_expected_from=promised)
    return ev.wrap(event, event.consultation_id)


async def publish_all(amqp_url: str, envelopes: list[ev.Envelope]) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE)
        await asyncio.gather(*(exchange.publish(
            aio_pika.Message(e.model_dump_json().encode(), message_id=str(e.event_id),
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=ev.EligibilityConfirmed.routing_key, mandatory=True) for e in envelopes))


async def test_four_scheduler_processes_book_a_thousand_consultations_without_overbooking(desk, tmp_path):
    engine = make_engine(desk, pool_size=1)
    processes = DeskProcesses(desk, tmp_path, PAYHARA_WORKERS='{"scheduler": 4}',
                              PAYHARA_SLOT_CAPACITY=str(CAPACITY), PAYHARA_BOOKING_HORIZON_DAYS="60")
    try:
        processes.start("scheduler")
        await asyncio.to_thread(processes.wait_ready, "scheduler")
        promised = date.today() + timedelta(days=3)
        envelopes = [confirmed(n, promised) for n in range(CONSULTATIONS)]
        ids = [e.correlation_id for e in envelopes]
        await publish_all(desk.amqp_url, envelopes)

        booked_ids: list = []
        deadline = time.monotonic() + 120
        while len(booked_ids) < CONSULTATIONS and time.monotonic() < deadline:
            async with engine.connect() as conn:
                booked_ids = list(await conn.scalars(
                    select(bookings.c.consultation_id).where(bookings.c.consultation_id.in_(ids))))
            await asyncio.sleep(0.5)

        assert len(booked_ids) == CONSULTATIONS, f"{len(booked_ids)} of {CONSULTATIONS} booked in time"
        assert len(set(booked_ids)) == CONSULTATIONS, "a consultation was booked twice"
        async with engine.connect() as conn:
            over = await conn.scalar(select(func.count()).select_from(slots).where(slots.c.booked > slots.c.capacity))
            seats = await conn.scalar(select(func.coalesce(func.sum(slots.c.booked), 0)))
            all_bookings = await conn.scalar(select(func.count()).select_from(bookings))
            days = await conn.scalar(text(
                "select count(distinct (s.starts_at at time zone 'Asia/Tokyo')::date) from scheduler.bookings b "
                "join scheduler.slots s on s.id = b.slot_id where b.consultation_id = any(:ids)"), {"ids": ids})
        assert over == 0
        assert seats == all_bookings, "a seat was taken without a booking, or a booking without a seat"
        assert days >= 2, "the batches did not spill over to later days"
    finally:
        processes.stop_all()
        await engine.dispose()
