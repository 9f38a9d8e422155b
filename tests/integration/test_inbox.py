"""The inbox on the real PostgreSQL: each (consumer, event) is handled once, even when two
deliveries of one event race, and a transaction that rolled back claims nothing. (Batches with
copies inside them: the use cases' own tests.)"""
import asyncio
import uuid

import pytest
from sqlalchemy import func, select, text

from services.intake.orm import inbox
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.inbox import first_deliveries
from shared.messaging import Delivery


@pytest.fixture(scope="module")
async def sessions(desk):
    engine = make_engine(desk, pool_size=4)
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture(autouse=True)
async def empty_inbox(sessions):
    async with sessions.begin() as session:
        await session.execute(text("truncate intake.inbox"))


async def first_delivery(session, inbox, consumer: str, event_id: uuid.UUID) -> bool:
    """A batch of one delivery of `event_id`, as a consumer claims it."""
    event = ev.EligibilityConfirmed(consultation_id=uuid.uuid4(), receipt_no="PH-261124-00010",
                                    reason="active_member", contact_expected_from="2026-11-25")
    envelope = ev.wrap(event, event.consultation_id).model_copy(update={"event_id": event_id})
    return await first_deliveries(session, inbox, consumer, [Delivery(envelope, event)]) != []


async def claim(sessions, consumer: str, event_id: uuid.UUID) -> bool:
    async with sessions.begin() as session:
        return await first_delivery(session, inbox, consumer, event_id)


async def recorded(sessions) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(inbox))


async def test_second_delivery_of_an_event_is_recognised(sessions):
    event_id = uuid.uuid4()
    assert await claim(sessions, "intake.confirmed", event_id) is True
    assert await claim(sessions, "intake.confirmed", event_id) is False
    assert await claim(sessions, "intake.confirmed", event_id) is False
    assert await claim(sessions, "intake.confirmed", uuid.uuid4()) is True
    assert await recorded(sessions) == 2


async def test_each_consumer_keeps_its_own_record(sessions):
    event_id = uuid.uuid4()
    assert await claim(sessions, "intake.confirmed", event_id) is True
    assert await claim(sessions, "intake.scheduled", event_id) is True
    assert await claim(sessions, "intake.scheduled", event_id) is False
    assert await recorded(sessions) == 2


async def test_two_concurrent_deliveries_claim_the_event_once(sessions):
    event_id = uuid.uuid4()
    async with sessions() as first, sessions() as second:
        await first.begin()
        assert await first_delivery(first, inbox, "intake.confirmed", event_id) is True
        await second.begin()
        racing = asyncio.create_task(first_delivery(second, inbox, "intake.confirmed", event_id))
        await asyncio.sleep(0.5)
        assert not racing.done(), "the second delivery must wait for the first transaction"
        await first.commit()
        assert await asyncio.wait_for(racing, timeout=5) is False
        await second.commit()
    assert await recorded(sessions) == 1


async def test_rolled_back_attempt_leaves_the_event_claimable(sessions):
    event_id = uuid.uuid4()
    async with sessions() as session:
        await session.begin()
        assert await first_delivery(session, inbox, "intake.confirmed", event_id) is True
        await session.rollback()  # the effect failed: the delivery will come again
    assert await recorded(sessions) == 0
    assert await claim(sessions, "intake.confirmed", event_id) is True
    assert await claim(sessions, "intake.confirmed", event_id) is False


async def test_waiting_delivery_takes_over_when_the_first_rolls_back(sessions):
    event_id = uuid.uuid4()
    async with sessions() as first, sessions() as second:
        await first.begin()
        assert await first_delivery(first, inbox, "intake.confirmed", event_id) is True
        await second.begin()
        racing = asyncio.create_task(first_delivery(second, inbox, "intake.confirmed", event_id))
        await asyncio.sleep(0.5)
        assert not racing.done()
        await first.rollback()
        assert await asyncio.wait_for(racing, timeout=5) is True
        await second.commit()
    assert await recorded(sessions) == 1
