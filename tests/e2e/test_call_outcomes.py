"""The operator loop with every service a real process: three unanswered calls, each outcome
published as the console will publish it, give a call task per attempt and then one fallback
e-mail to the consultant."""
import asyncio
import email
import email.policy
import uuid
from datetime import datetime, timezone

import aio_pika
import asyncpg
import httpx

from shared import events as ev
from shared.db import libpq_dsn
from shared.topology import EVENTS_EXCHANGE
from tests.e2e.test_pipeline import operator_session, wait_for
from tests.support import submission


async def publish(amqp_url: str, event: ev.CallOutcomeRecorded) -> None:
    envelope = ev.wrap(event, event.consultation_id)
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE)
        message = aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.event_id),
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await exchange.publish(message, routing_key=event.routing_key, mandatory=True)


async def booking_of(database_url: str, consultation_id: str):
    """The console's task view does not carry the booking yet: read it where the scheduler keeps it."""
    connection = await asyncpg.connect(libpq_dsn(database_url))
    try:
        return await connection.fetchrow(
            "SELECT id, attempt, status FROM scheduler.bookings WHERE consultation_id = $1", uuid.UUID(consultation_id))
    finally:
        await connection.close()


def fallback_mails(desk, consultation_id: str) -> list:
    wanted = f"<callback_fallback.{consultation_id}@payhara-desk.invalid>"
    messages = [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in desk.mail_dir.glob("*.eml")]
    return [m for m in messages if str(m["Message-ID"]).strip() == wanted]


async def test_three_unanswered_calls_give_three_call_tasks_then_one_fallback_mail(running_desk, desk):
    processes = running_desk
    async with httpx.AsyncClient(base_url=processes.url("intake"), timeout=10) as intake:
        response = await intake.post("/api/v1/consultations", json=submission(2))  # by phone, with an address
        assert response.status_code == 202
        receipt = response.json()
    cid = receipt["consultation_id"]
    async with operator_session(processes) as console:
        async def call_tasks(count: int):
            listed = (await console.get("/api/v1/tasks")).json()
            tasks = [t for t in listed if t["receipt_no"] == receipt["receipt_no"]]
            return tasks if len(tasks) >= count else None

        for attempt in (1, 2, 3):
            tasks = await wait_for(lambda: call_tasks(attempt), 60, f"the call task of attempt {attempt}")
            booking = await wait_for(lambda: booking_of(desk.database_url, cid), 30, "the booking")
            assert (booking["attempt"], booking["status"]) == (attempt, "live")
            await publish(desk.amqp_url, ev.CallOutcomeRecorded(
                consultation_id=uuid.UUID(cid), receipt_no=receipt["receipt_no"], booking_id=booking["id"],
                attempt=attempt, outcome="no_answer", operator_id="e2e-operator", note_length=0,
                recorded_at=datetime.now(timezone.utc)))
        assert [t["kind"] for t in tasks] == ["call"] * 3
        assert len({t["due_starts_at"] for t in tasks}) == 3  # each attempt at its own slot

    mails = await wait_for(lambda: asyncio.to_thread(fallback_mails, processes, cid), 60, "the fallback e-mail")
    await asyncio.sleep(2)  # a duplicate still on its way would arrive meanwhile
    assert len(fallback_mails(processes, cid)) == len(mails) == 1
    assert "3回お電話しましたが" in mails[0].get_body(("plain",)).get_content()
    assert (await booking_of(desk.database_url, cid))["status"] == "exhausted"
