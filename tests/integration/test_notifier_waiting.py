"""Nothing waits for ever in the notifier, on real Postgres: an unschedulable callback is noted
once, and the watch reports a task order without its copy and a copy without a task past the
limit, but neither fresh ones nor a consultation that waits for an operator."""
import asyncio
import logging
import uuid
from datetime import date, datetime, timedelta, timezone

from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select

from services.notifier import handlers
from services.notifier.orm import consultations, pending, possible_duplicates, tasks, unschedulable_callbacks
from services.notifier.waiting import check, watch
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from tests.integration.test_notifier import sessions  # noqa: F401 (the fixture)

NOW = datetime(2020, 1, 1, 1, 0, tzinfo=timezone.utc)  # long before any other test's rows
LIMIT_S = 1800


def unschedulable(consultation_id: uuid.UUID) -> Delivery:
    event = ev.CallbackUnschedulable(consultation_id=consultation_id, receipt_no="PH-200101-00042",
                                     reason="no_free_slot")
    return Delivery(ev.wrap(event, consultation_id), event)


def noted() -> float:
    return REGISTRY.get_sample_value("payhara_unschedulable_callbacks_total") or 0.0


async def test_an_unschedulable_callback_is_noted_once_on_redelivery(sessions, desk, caplog):
    deps = handlers.Notifier(sessions, desk, mailer=None)
    delivery, before = unschedulable(uuid.uuid4()), noted()
    republished = Delivery(ev.Envelope(**{**delivery.envelope.model_dump(), "event_id": uuid.uuid4()}), delivery.event)
    with caplog.at_level(logging.WARNING, logger="payhara.notifier"):
        await handlers.unschedulable([delivery, delivery], deps)  # a copy within the batch
        await handlers.unschedulable([delivery], deps)  # redelivered
        await handlers.unschedulable([republished], deps)  # published twice by the relay
    assert noted() == before + 1
    async with sessions() as s:
        rows = (await s.execute(select(unschedulable_callbacks).where(
            unschedulable_callbacks.c.consultation_id == delivery.event.consultation_id))).all()
    assert [(r.receipt_no, r.reason) for r in rows] == [("PH-200101-00042", "no_free_slot")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "PH-200101-00042" in warnings[0] and "no_free_slot" in warnings[0]


async def add_copy(session, received_at: datetime) -> uuid.UUID:
    cid = uuid.uuid4()
    await session.execute(insert(consultations).values(
        consultation_id=cid, receipt_no="PH-200101-00001", consultant_name="山田 花子", contact_method="phone",
        phone="090-0000-0000", category="online", summary="口コミに虚偽の投稿", urls=[],
        received_at=received_at, contact_expected_from=date(2020, 1, 6)))
    return cid


async def add_order(session, created_at: datetime) -> uuid.UUID:
    cid = uuid.uuid4()
    await session.execute(insert(pending).values(consultation_id=cid, kind="review", reason="member_not_found",
                                                 created_at=created_at))
    return cid


async def test_the_watch_reports_what_waits_too_long_and_nothing_else(sessions, desk, caplog):
    old, fresh = NOW - timedelta(hours=1), NOW - timedelta(minutes=15)
    async with sessions.begin() as s:
        order_without_copy, _fresh_order = await add_order(s, old), await add_order(s, fresh)
        copy_without_task, _fresh_copy = await add_copy(s, old), await add_copy(s, fresh)
        with_task, operator_case = await add_copy(s, old), await add_copy(s, old)
        await s.execute(insert(tasks).values(task_id=uuid.uuid4(), consultation_id=with_task, kind="review"))
    await handlers.unschedulable([unschedulable(operator_case)], handlers.Notifier(sessions, desk, mailer=None))

    with caplog.at_level(logging.WARNING, logger="payhara.notifier"):
        found = await check(sessions, LIMIT_S, now=NOW)
    assert [(w.what, w.count, w.sample) for w in found] == [
        ("task_without_copy", 1, [order_without_copy]), ("copy_without_task", 1, [copy_without_task])]
    for what in ("task_without_copy", "copy_without_task"):
        assert REGISTRY.get_sample_value("payhara_waiting_too_long", {"what": what}) == 1
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(order_without_copy) in logged and str(copy_without_task) in logged
    assert "山田" not in logged
    async with sessions() as s:
        on_record = await s.scalar(select(func.count()).select_from(possible_duplicates))
    assert REGISTRY.get_sample_value("payhara_possible_duplicate_emails_recorded") == on_record

    assert [w.count for w in await check(sessions, LIMIT_S, now=NOW - timedelta(minutes=45))] == [0, 0]
    assert REGISTRY.get_sample_value("payhara_waiting_too_long", {"what": "copy_without_task"}) == 0


async def test_the_watch_keeps_looking_while_the_database_is_away(desk, caplog):
    engine = make_engine(desk.model_copy(update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}))
    looking = asyncio.create_task(watch(make_sessions(engine), desk.model_copy(update={"waiting_check_s": 0.05})))
    with caplog.at_level(logging.WARNING, logger="payhara.notifier"):
        await asyncio.sleep(0.3)
    try:
        assert not looking.done(), "a watch that ends makes the notifier unready"
        assert sum("waiting watch could not look" in r.getMessage() for r in caplog.records) >= 2
    finally:
        looking.cancel()
        await engine.dispose()
