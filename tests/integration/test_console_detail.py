"""The task page as a detail page, on real Postgres: a consultation the notifier received and a
booking give a call task whose TaskIssued carries the consultation's details; the console keeps
them and its task page shows each in Japanese (escaped), with the consultation's history and the
view recorded; an older task without them says 「（記録なし）」."""
import re
import uuid
from contextlib import aclosing
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, update

from services.console import web
from services.console.orm import call_outcomes, data_views, operators, task_notes
from services.console.orm import tasks as console_tasks
from services.console.passwords import hash_password
from services.console.tasks import record_tasks
from services.notifier import tasks as task_cases
from services.notifier.acknowledging import acknowledge
from services.notifier.orm import outbox
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from tests.integration.test_notifier import FakeMailer
from tests.console_support import csrf_token

PASSWORD = "correct horse battery"
LOGIN = "detail-op"
INSTITUTION = '<仁愛>クリニック & "本院"'


@pytest.fixture(scope="module")
async def desk(settings):
    """The desk's database, fresh and migrated: these tests publish nothing and consume nothing,
    so they need no broker (the session's `desk` also resets the broker's topology)."""
    import asyncio

    from shared import migrate
    from tests.support import SERVICES, recreate_database

    await recreate_database(settings.database_url)
    await asyncio.to_thread(migrate.upgrade, SERVICES, settings.database_url)
    return settings


@pytest.fixture(scope="module")
async def db(desk):
    engine = make_engine(desk, pool_size=4)
    async with engine.begin() as conn:
        await conn.execute(insert(operators).values(
            [{"login": LOGIN, "display_name": "詳細 一郎", "password_hash": hash_password(PASSWORD)}]))
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture
def app(desk, db) -> FastAPI:
    app = FastAPI()
    web.install(app, db, desk, clock=lambda: datetime.now(timezone.utc))
    return app


async def logged_in(app: FastAPI) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")
    form = await client.get("/login")
    assert (await client.post("/login", data={"login": LOGIN, "password": PASSWORD,
                                              "csrf_token": csrf_token(form)})).status_code == 303
    return client


def received() -> ev.ConsultationReceived:
    cid = uuid.uuid4()
    return ev.ConsultationReceived(
        consultation_id=cid, receipt_no=f"PH-261202-{cid.int % 10**5:05d}", channel="web",
        received_at=datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc), contact_expected_from=date(2026, 12, 3),
        consultant=ev.Consultant(name="佐藤 看子", name_kana="サトウ ミルコ", role="medical_staff"),
        institution=ev.InstitutionInfo(name=INSTITUTION, prefecture="東京都", manager_member_no="M-4242"),
        contact=ev.Contact(method="phone", phone="0312345678", email="kango@example.jp"),
        category="online", summary="口コミに<script>alert(1)</script>と書かれた",
        urls=["https://www.google.com/maps/place/x", "https://x.com/someone/status/1?a=1&b=2"],
        posts=[ev.PostRef(url="https://www.google.com/maps/place/x", platform="google_maps"),
               ev.PostRef(url="https://x.com/someone/status/1?a=1&b=2", platform="x")],
        urgent=True, preferred_time="afternoon")


async def issued_tasks(db, consultation_id) -> list[tuple[ev.Envelope, ev.TaskIssued]]:
    async with db() as conn:
        bodies = (await conn.scalars(select(outbox.c.body).where(
            outbox.c.correlation_id == consultation_id,
            outbox.c.routing_key == ev.TaskIssued.routing_key))).all()
    return [ev.unwrap(body, ev.TaskIssued) for body in bodies]


async def test_a_booked_call_task_carries_the_details_and_its_page_shows_them(app, db, desk):
    consultation = received()
    await acknowledge([Delivery(ev.wrap(consultation, consultation.consultation_id), consultation)],
                      db, FakeMailer(), desk)
    starts = datetime(2026, 12, 3, 5, 0, tzinfo=timezone.utc)
    booking = ev.CallbackScheduled(consultation_id=consultation.consultation_id, receipt_no=consultation.receipt_no,
                                   booking_id=uuid.uuid4(), slot_starts_at=starts,
                                   slot_ends_at=starts + timedelta(minutes=30))
    await task_cases.order_tasks([Delivery(ev.wrap(booking, booking.consultation_id), booking)], db,
                                 "notifier.scheduled", task_cases.scheduled_order)

    [(envelope, task)] = await issued_tasks(db, consultation.consultation_id)
    assert task.kind == "call"
    assert (task.name_kana, task.role, task.member_no) == ("サトウ ミルコ", "medical_staff", None)
    assert task.institution == consultation.institution
    assert (task.preferred_time, task.urgent, task.posts) == ("afternoon", True, consultation.posts)

    assert await record_tasks([Delivery(envelope, task)], db) == 1
    async with db.begin() as conn:  # some history: an outcome, a note, the task closed
        operator_id = await conn.scalar(select(operators.c.id).where(operators.c.login == LOGIN))
        at = datetime(2026, 12, 3, 5, 10, tzinfo=timezone.utc)
        await conn.execute(insert(call_outcomes).values(
            task_id=task.task_id, consultation_id=task.consultation_id, receipt_no=task.receipt_no,
            booking_id=task.booking_id, attempt=1, outcome="reached", operator_id=operator_id, recorded_at=at))
        await conn.execute(insert(task_notes).values(
            task_id=task.task_id, consultation_id=task.consultation_id, operator_id=operator_id,
            note="本人と話した", written_at=at))
        await conn.execute(update(console_tasks).where(console_tasks.c.task_id == task.task_id).values(
            status="done", closed_at=at, closed_by=operator_id))

    async with aclosing(await logged_in(app)) as client:
        page = await client.get(f"/tasks/{task.task_id}")
    assert page.status_code == 200
    html = page.text
    for shown in ("佐藤 看子", "サトウ ミルコ", "会員が開設・管理する医療機関の職員", "東京都", "M-4242",
                  "03-1234-5678", "kango@example.jp", "午後", "【緊急】", "<strong>緊急</strong>",
                  "Googleマップ（Googleビジネスプロフィール）", "X（旧Twitter）",
                  "https://x.com/someone/status/1?a=1&amp;b=2", "2026/12/03 以降",
                  "&lt;仁愛&gt;クリニック &amp; &#34;本院&#34;", "口コミに&lt;script&gt;alert(1)&lt;/script&gt;と書かれた",
                  "なし（入力されていません）",  # staff give no member number of their own
                  "つながった", "詳細 一郎 さん", "対応済み", "本人と話した"):
        assert shown in html, shown
    assert "<script>alert" not in html and INSTITUTION not in html
    assert "（記録なし）" not in html
    assert re.search(r'id="history-outcomes">\s*<li>2026/12/03\(木\) 14:10 1回目：つながった', html)

    async with db() as conn:  # the view of the page is still recorded
        seen = (await conn.execute(select(data_views.c.what).where(
            data_views.c.consultation_id == task.consultation_id))).scalars().all()
    assert seen == ["task"]


async def test_an_older_task_without_the_details_says_not_recorded(app, db):
    old = ev.TaskIssued(
        task_id=uuid.uuid4(), consultation_id=uuid.uuid4(), receipt_no="PH-261101-00001", kind="call",
        booking_id=uuid.uuid4(), consultant_name="古川 一郎", contact=ev.Contact(method="phone", phone="0312345678"),
        category="in_person", summary="受付で怒鳴られた", urls=["https://example.jp/r/1"])
    assert await record_tasks([Delivery(ev.wrap(old, old.consultation_id), old)], db) == 1
    async with aclosing(await logged_in(app)) as client:
        page = await client.get(f"/tasks/{old.task_id}")
    assert page.status_code == 200
    for field in ("task-urgency", "task-kana", "task-role", "task-member-no", "task-institution",
                  "task-prefecture", "task-manager-no", "task-preferred-time", "task-promised"):
        assert re.search(rf'id="{field}">（記録なし）</dd>', page.text), field
    assert "（記録なし）</span>：<a href=\"https://example.jp/r/1\"" in page.text
    assert "【緊急】" not in page.text


async def test_a_review_shows_what_the_consultant_gave_beside_the_candidates(app, db):
    review = ev.TaskIssued(
        task_id=uuid.uuid4(), consultation_id=uuid.uuid4(), receipt_no="PH-261101-00002", kind="review",
        reason="member_unknown", consultant_name="架空 花子", contact=ev.Contact(method="phone", phone="0312345678"),
        category="in_person", summary="受付で怒鳴られた", name_kana="かくう はなこ", role="member", member_no="M0020")
    assert await record_tasks([Delivery(ev.wrap(review, review.consultation_id), review)], db) == 1
    async with aclosing(await logged_in(app)) as client:
        page = await client.get(f"/tasks/{review.task_id}")
    assert page.status_code == 200
    assert 'id="submitted-member-no">M0020</dd>' in page.text and "かくう はなこ" in page.text
    assert 'id="not-carried"' not in page.text  # everything the review needs came with the task
