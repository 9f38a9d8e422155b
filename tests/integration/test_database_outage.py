"""A database outage is a delay, never a dead letter nor a 500: the database is cut (or frozen)
through a TCP proxy the test controls, never by stopping the shared server.

- a consumer (eligibility's real handler, on the real broker) holds its deliveries while the
  database is away, retrying with backoff; when it is back every event is judged once, nothing
  went to the DLQ and no delivery was counted against the limit;
- intake answers 503 with Retry-After and a code, the form keeps what was typed, and a frozen
  database gives a quick answer and no consultation committed behind the client's back."""
import asyncio
import time
import uuid
from datetime import date, datetime, timezone

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from services.eligibility import handlers as eligibility_handlers
from services.eligibility.orm import verdicts
from tests.integration.test_intake import post_form
from services.intake import main as intake_main, receipts, unavailable, web
from services.intake.orm import consultations
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Consumers
from shared.topology import EVENTS_EXCHANGE, dead_letter_queue_name, queue_name
from tests.integration.test_intake import SUBMISSION
from tests.tcp_proxy import TcpProxy

QUEUE = queue_name("eligibility", ev.ConsultationReceived)


@pytest.fixture
async def database_proxy(desk):
    proxy = TcpProxy.in_front_of(desk.database_url, default_port=5432)
    await proxy.start()
    yield proxy
    proxy.thaw()
    await proxy.stop()


def through(desk, proxy: TcpProxy, **settings):
    return desk.model_copy(update={"database_url": proxy.url(desk.database_url), **settings})


def received(n: int) -> ev.Envelope:
    cid = uuid.uuid4()
    event = ev.ConsultationReceived(
        consultation_id=cid, receipt_no=f"PH-261129-{n:04d}0", channel="web",
        received_at=datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc), contact_expected_from=date(2026, 11, 30),
        consultant=ev.Consultant(name="見本 太郎", name_kana="ミホン タロウ", role="member", member_no="M0001"),
        institution=ev.InstitutionInfo(), contact=ev.Contact(method="phone", phone="0312345678"),
        category="in_person", summary="試験", urls=[])
    return ev.wrap(event, cid)


async def publish(desk, envelopes: list[ev.Envelope]) -> None:
    connection = await aio_pika.connect(desk.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE)
        for envelope in envelopes:
            await exchange.publish(aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.event_id),
                                                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                   routing_key=ev.ConsultationReceived.routing_key, mandatory=True)


async def depth(desk, queue: str) -> int:
    connection = await aio_pika.connect(desk.amqp_url)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return declared.declaration_result.message_count


async def test_a_consumer_holds_its_events_through_a_database_outage_and_applies_each_once(desk, database_proxy):
    settings = through(desk, database_proxy, consume_retry_first_s=0.2, consume_retry_max_s=1.0,
                       db_connect_timeout_s=1.0, db_statement_timeout_s=1.0, db_pool_timeout_s=1.0)
    engine = make_engine(settings, pool_size=2)
    sessions = make_sessions(engine)
    consumers = Consumers(settings, "eligibility")
    consumers.include(eligibility_handlers.subscriptions, sessions)
    truth = make_engine(desk, pool_size=1)  # the test's own view, not through the proxy
    try:
        await consumers.start()
        await database_proxy.stop()  # the database "goes away" for the consumer only
        envelopes = [received(n) for n in range(20)]
        await publish(desk, envelopes)
        deadline = time.monotonic() + 10
        while not consumers.paused() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert consumers.paused() == [QUEUE]
        await asyncio.sleep(5)  # without the pause, six quick failures would dead-letter them all
        assert await depth(desk, dead_letter_queue_name(QUEUE)) == 0

        await database_proxy.start()
        ids = [e.correlation_id for e in envelopes]
        judged = 0
        while judged < len(ids) and time.monotonic() < deadline + 30:
            async with truth.connect() as conn:
                judged = await conn.scalar(select(func.count()).select_from(verdicts)
                                           .where(verdicts.c.consultation_id.in_(ids)))
            await asyncio.sleep(0.2)
        assert judged == len(ids), "every event judged once the database was back"
        assert consumers.paused() == []
        assert await depth(desk, dead_letter_queue_name(QUEUE)) == 0, "an outage dead-lettered a good event"
        assert await depth(desk, QUEUE) == 0
    finally:
        await consumers.stop()
        await engine.dispose()
        await truth.dispose()


@pytest.fixture
async def intake_through(desk, database_proxy):
    settings = through(desk, database_proxy, db_connect_timeout_s=1.0, db_statement_timeout_s=1.0,
                       db_pool_timeout_s=1.0)
    engine = make_engine(settings, pool_size=2)
    app = FastAPI()
    app.include_router(intake_main.routes(make_sessions(engine), settings))
    unavailable.install(app, web.templates)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake", timeout=30) as client:
        yield client
    await engine.dispose()


async def stored_receipts(desk) -> int:
    engine = make_engine(desk, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(select(func.count()).select_from(consultations))
    finally:
        await engine.dispose()


FORM = {"name": "見本 花子", "name_kana": "みほん はなこ", "role": "member", "member_no": "M0001",
        "contact_method": "email", "email": "hanako@example.com", "category": "in_person",
        "summary": "受付で大声を出され、長時間にわたり威圧されました。", "consent": "yes"}


async def test_intake_answers_503_with_retry_after_while_its_database_is_away(desk, database_proxy, intake_through):
    before = await stored_receipts(desk)
    await database_proxy.stop()

    api_answer = await intake_through.post("/api/v1/consultations", json=SUBMISSION)
    assert api_answer.status_code == 503
    assert api_answer.headers["retry-after"] == str(unavailable.RETRY_AFTER_S)
    assert api_answer.json()["code"] == "temporarily_unavailable"

    form_answer = await post_form(intake_through, "/consultations", FORM)  # the form page needs no database
    assert form_answer.status_code == 503 and form_answer.headers["retry-after"]
    page = form_answer.text
    assert "ご相談はまだ記録されていません" in page and "受付番号" not in page
    assert "受付で大声を出され、長時間にわたり威圧されました。" in page, "what was typed is kept"
    assert desk.desk_phone in page and desk.desk_hours in page

    well_formed = receipts.receipt_no(1, datetime.now(timezone.utc))
    status_answer = await post_form(intake_through, "/status", {"receipt_no": well_formed, "status_token": "x"})
    assert status_answer.status_code == 503 and "受付状況を確認できません" in status_answer.text
    assert desk.desk_phone in status_answer.text

    await database_proxy.start()
    assert (await intake_through.post("/api/v1/consultations", json=SUBMISSION)).status_code == 202
    assert await stored_receipts(desk) == before + 1, "only the submission after the outage was recorded"


async def test_a_frozen_database_gives_a_quick_503_and_commits_nothing_behind_the_clients_back(
        desk, database_proxy, intake_through):
    before = await stored_receipts(desk)
    well_formed = receipts.receipt_no(1, datetime.now(timezone.utc))
    await intake_through.get(f"/api/v1/consultations/{well_formed}")  # a pooled connection, then freeze
    database_proxy.freeze()
    started = time.monotonic()
    answer = await intake_through.post("/api/v1/consultations", json=SUBMISSION)
    elapsed = time.monotonic() - started
    assert answer.status_code == 503 and answer.json()["code"] == "temporarily_unavailable"
    assert elapsed < 10, f"a frozen database held the request for {elapsed:.1f} s"
    database_proxy.thaw()
    await asyncio.sleep(2)  # anything the frozen link still held reaches the server now
    assert await stored_receipts(desk) == before, "a consultation was committed after the client was told 503"
