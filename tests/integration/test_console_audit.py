"""The audit of personal data views, on real Postgres: every page and API answer that shows a
consultation's personal data leaves one row per consultation (operator, time, consultation, what),
nothing else does; supervisors search the rows newest first, by receipt number or operator, a
page at a time, and operators are refused; rows past their retention are purged; and no
consultant's data reaches the logs."""
import asyncio
import logging
import re
import uuid
from contextlib import aclosing
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text

from services.console import data_views, handlers, web
from services.console.accounts import add_operator
from services.console.orm import data_views as data_views_table
from services.console.tasks import record_tasks
from shared import events as ev
from shared.calendar import JST
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from shared.settings import Settings
from tests.console_support import Clock, csrf_token

PASSWORD = "correct horse battery"
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=JST)
NAME, PHONE, EMAIL = "監査 太郎", "0311112222", "kansa.taro@example.com"


@pytest.fixture(scope="module")
async def db(desk):
    engine = make_engine(desk, pool_size=4)
    async with engine.begin() as conn:
        await conn.execute(text("truncate console.tasks, console.inbox, console.data_views cascade"))
    yield make_sessions(engine)
    async with engine.begin() as conn:
        await conn.execute(text("truncate console.tasks, console.inbox, console.data_views cascade"))
    await engine.dispose()


@pytest.fixture(scope="module")
async def staff(db) -> dict:
    return {"operator": await add_operator(db, "audit-op", "閲覧 一郎", PASSWORD),
            "other": await add_operator(db, "audit-op2", "閲覧 二郎", PASSWORD),
            "supervisor": await add_operator(db, "audit-boss", "監督 花子", PASSWORD, role="supervisor")}


@pytest.fixture
async def fresh(db):
    async with db.begin() as conn:
        await conn.execute(text("truncate console.tasks, console.data_views cascade"))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def app(desk, db, clock) -> FastAPI:
    app = FastAPI()
    web.install(app, db, desk, clock=clock)
    return app


async def logged_in(app: FastAPI, login: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")
    form = await client.get("/login")
    assert (await client.post("/login", data={"login": login, "password": PASSWORD,
                                              "csrf_token": csrf_token(form)})).status_code == 303
    client.headers["X-CSRF-Token"] = csrf_token(await client.get("/phone"))
    return client


async def issue(db, kind: str = "call", consultation_id: uuid.UUID | None = None, receipt_no: str | None = None,
                due: datetime | None = NOW) -> ev.TaskIssued:
    consultation_id = consultation_id or uuid.uuid4()
    task = ev.TaskIssued(
        task_id=uuid.uuid4(), consultation_id=consultation_id,
        receipt_no=receipt_no or f"PH-261202-{uuid.uuid4().int % 10**5:05d}", kind=kind,
        booking_id=uuid.uuid4() if kind == "call" else None, due_starts_at=due, due_ends_at=None,
        consultant_name=NAME, contact=ev.Contact(method="phone", phone=PHONE, email=EMAIL),
        category="in_person", summary="待合室で怒鳴られた", urls=[])
    assert await record_tasks([Delivery(ev.wrap(task, consultation_id), task)], db) == 1
    return task


async def views(db) -> list:
    async with db() as conn:
        return list((await conn.execute(select(data_views_table).order_by(data_views_table.c.id))).all())


# --- what is recorded ---------------------------------------------------------------------

async def test_the_queue_records_each_consultation_it_lists_once_in_one_request(app, db, clock, staff, fresh):
    call = await issue(db)
    bounced = await issue(db, kind="bounced", consultation_id=call.consultation_id, receipt_no=call.receipt_no,
                          due=None)  # the same consultation, listed twice
    other = await issue(db, due=None)
    later = await issue(db, due=NOW + timedelta(days=2))
    async with aclosing(await logged_in(app, "audit-op")) as client:
        assert await views(db) == []  # logging in and opening the phone form show no one's data
        assert (await client.get("/")).status_code == 200
        rows = await views(db)
        assert sorted((r.consultation_id, r.receipt_no) for r in rows) == sorted(
            [(call.consultation_id, call.receipt_no), (other.consultation_id, other.receipt_no)])
        assert {(r.operator_id, r.what, r.at) for r in rows} == {(staff["operator"].id, "queue", NOW)}
        assert bounced.receipt_no == call.receipt_no
        await client.get("/upcoming")
        assert [(r.consultation_id, r.what) for r in (await views(db))[2:]] == [(later.consultation_id, "upcoming")]


async def test_the_task_list_without_personal_data_is_not_a_view_of_it(app, db, staff, fresh):
    call = await issue(db)
    async with aclosing(await logged_in(app, "audit-op")) as client:
        answer = await client.get("/api/v1/tasks", params={"fields": "reference"})
        assert answer.status_code == 200
        (task,) = [t for t in answer.json() if t["task_id"] == str(call.task_id)]
        assert set(task) == {"task_id", "consultation_id", "receipt_no", "kind", "due_starts_at", "due_ends_at",
                             "attempt", "status"}
        assert await views(db) == []
        await client.get("/api/v1/tasks")  # with the names and contacts: recorded
        assert [r.consultation_id for r in await views(db)] == [call.consultation_id]


async def test_every_page_and_answer_with_personal_data_is_recorded_and_nothing_else(app, db, clock, staff, fresh):
    call, review = await issue(db), await issue(db, kind="review", due=None)
    await handlers.review_requested([Delivery(ev.wrap(event, review.consultation_id), event) for event in [
        ev.EligibilityReviewRequested(consultation_id=review.consultation_id, receipt_no=review.receipt_no,
                                      reason="member_unknown", candidates=[])]], db)
    async with aclosing(await logged_in(app, "audit-op")) as client:
        steps = [
            (client.get(f"/tasks/{call.task_id}"), "task", call),
            (client.get(f"/reviews/{review.consultation_id}"), "review", review),
            (client.get("/api/v1/tasks"), "api_tasks", None),
            (client.get(f"/api/v1/tasks/{call.task_id}"), "api_task", call),
            (client.post(f"/api/v1/tasks/{call.task_id}/claim"), "api_claim", call),
            (client.post(f"/api/v1/tasks/{call.task_id}/release"), "api_release", call),
            (client.get(f"/api/v1/reviews/{review.consultation_id}"), "api_review", review),
        ]
        for request, what, task in steps:
            before = len(await views(db))
            assert (await request).status_code == 200, what
            added = (await views(db))[before:]
            expected = [call, review] if task is None else [task]
            assert sorted(r.consultation_id for r in added) == sorted(t.consultation_id for t in expected), what
            assert {r.what for r in added} == {what} and {r.operator_id for r in added} == {staff["operator"].id}
        before = len(await views(db))
        for quiet in (client.get(f"/tasks/{uuid.uuid4()}"), client.get(f"/api/v1/tasks/{uuid.uuid4()}"),
                      client.post(f"/api/v1/tasks/{call.task_id}/release"),  # refused: not held
                      client.get("/phone")):
            await quiet
        assert len(await views(db)) == before


# --- who may read them --------------------------------------------------------------------

async def test_an_operator_may_not_read_the_audit(app, staff):
    async with aclosing(await logged_in(app, "audit-op")) as client:
        page = await client.get("/audit")
        assert page.status_code == 403 and "責任者の権限が必要です" in page.text
        api = await client.get("/api/v1/audit")
        assert api.status_code == 403 and api.json()["code"] == "forbidden"
        assert "/audit" not in (await client.get("/phone")).text  # no link to it either


async def test_a_supervisor_finds_views_newest_first_by_receipt_or_operator_a_page_at_a_time(
        app, db, clock, staff, fresh):
    first, second = await issue(db, receipt_no="PH-261202-00013"), await issue(db, receipt_no="PH-261202-00021")
    operator, other = await logged_in(app, "audit-op"), await logged_in(app, "audit-op2")
    async with aclosing(operator), aclosing(other), aclosing(await logged_in(app, "audit-boss")) as boss:
        assert "個人情報の閲覧記録" in (await boss.get("/phone")).text  # the menu links to it
        for minute, (client, task) in enumerate([(operator, first), (other, first), (operator, second),
                                                 (other, second), (operator, first)]):
            clock.now = NOW + timedelta(minutes=minute)
            assert (await client.get(f"/tasks/{task.task_id}")).status_code == 200

        api = (await boss.get("/api/v1/audit")).json()
        assert [(v["receipt_no"], v["operator"]["id"]) for v in api["views"]] == [
            ("PH-261202-00013", staff["operator"].id), ("PH-261202-00021", staff["other"].id),
            ("PH-261202-00021", staff["operator"].id), ("PH-261202-00013", staff["other"].id),
            ("PH-261202-00013", staff["operator"].id)]
        newest = api["views"][0]
        assert datetime.fromisoformat(newest["at"]) == NOW + timedelta(minutes=4)
        assert newest | {"id": 0, "at": None} == {
            "id": 0, "at": None, "consultation_id": str(first.consultation_id),
            "receipt_no": "PH-261202-00013", "what": "task", "what_label": "タスクの画面",
            "operator": {"id": staff["operator"].id, "display_name": "閲覧 一郎", "login": "audit-op"}}
        assert api["next_before"] is None

        typed = (await boss.get("/api/v1/audit", params={"receipt_no": " ｐｈ－２６１２０２－０００２１"})).json()
        assert [v["operator"]["login"] for v in typed["views"]] == ["audit-op2", "audit-op"]
        theirs = (await boss.get("/api/v1/audit", params={"operator_id": staff["other"].id})).json()
        assert [v["receipt_no"] for v in theirs["views"]] == ["PH-261202-00021", "PH-261202-00013"]

        pages, before = [], None
        while True:
            page = (await boss.get("/api/v1/audit", params={"limit": 2} | ({"before": before} if before else {})))
            pages.append([v["id"] for v in page.json()["views"]])
            if (before := page.json()["next_before"]) is None:
                break
        assert pages == [[v["id"] for v in api["views"]][i:i + 2] for i in (0, 2, 4)]

        html = await boss.get("/audit", params={"receipt_no": "PH-261202-00013"})
        assert html.status_code == 200 and html.text.count("<td>タスクの画面</td>") == 3
        assert "閲覧 二郎" in html.text and "2026/12/02(水) 10:04" in html.text and NAME not in html.text
        by_operator = await boss.get("/audit", params={"operator": str(staff["other"].id)})
        assert by_operator.text.count("<td>タスクの画面</td>") == 2
        assert (await boss.get("/audit", params={"operator": "x", "before": "-1"})).status_code == 200
        assert "条件に合う記録はありません" in (await boss.get("/audit", params={"receipt_no": "PH-000000-00000"})).text


async def test_the_audit_page_goes_to_older_views_fifty_at_a_time(app, db, clock, staff, fresh):
    task = await issue(db)
    async with db.begin() as conn:
        await conn.execute(insert(data_views_table).values([
            {"operator_id": staff["operator"].id, "consultation_id": task.consultation_id,
             "receipt_no": task.receipt_no, "what": "queue", "at": NOW - timedelta(minutes=n)} for n in range(60)]))
    async with aclosing(await logged_in(app, "audit-boss")) as boss:
        page = await boss.get("/audit")
        assert page.text.count("<td>対応待ちの一覧（今日まで）</td>") == 50
        older = re.search(r'href="(/audit\?[^"]+)" id="older"', page.text).group(1).replace("&amp;", "&")
        rest = await boss.get(older)
        assert rest.text.count("<td>対応待ちの一覧（今日まで）</td>") == 10 and 'id="older"' not in rest.text
        assert "2026/12/02(水) 09:01" in rest.text and "最新の記録に戻る" in rest.text


# --- retention and logs -------------------------------------------------------------------

async def test_views_past_their_retention_are_purged_in_batches_by_the_console_s_loop(
        app, db, staff, fresh, monkeypatch):
    task = await issue(db)
    ages = [timedelta(days=d) for d in (1, 700, 731 - 1, 731 + 1, 800, 900, 1000, 2000)]
    async with db.begin() as conn:
        await conn.execute(insert(data_views_table).values([
            {"operator_id": staff["operator"].id, "consultation_id": task.consultation_id,
             "receipt_no": task.receipt_no, "what": "task", "at": NOW - age} for age in ages]))
    monkeypatch.setattr(data_views, "PURGE_BATCH", 2)
    assert await data_views.purge(db, NOW, keep_days=731) == 5
    assert sorted(NOW - r.at for r in await views(db)) == ages[:3]

    async with db.begin() as conn:
        await conn.execute(insert(data_views_table).values(
            operator_id=staff["operator"].id, consultation_id=task.consultation_id, receipt_no=task.receipt_no,
            what="task", at=NOW - timedelta(days=800)))
    loop = asyncio.create_task(app.state.console_logins.purge_forever(
        also=lambda: data_views.purge(db, NOW, keep_days=731)))
    try:
        for _ in range(100):
            if len(await views(db)) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
    assert len(await views(db)) == 3


def test_the_retention_is_a_setting_of_about_two_years(monkeypatch):
    monkeypatch.delenv("PAYHARA_CONSOLE_DATA_VIEWS_KEEP_DAYS", raising=False)
    assert Settings().console_data_views_keep_days == 731
    monkeypatch.setenv("PAYHARA_CONSOLE_DATA_VIEWS_KEEP_DAYS", "365")
    assert Settings().console_data_views_keep_days == 365
    monkeypatch.setenv("PAYHARA_CONSOLE_DATA_VIEWS_KEEP_DAYS", "0")
    with pytest.raises(ValueError):
        Settings()


async def test_no_consultant_s_data_reaches_the_logs(app, db, staff, fresh, caplog):
    task = await issue(db, kind="email")
    caplog.set_level(logging.DEBUG)
    async with aclosing(await logged_in(app, "audit-op")) as client:
        await client.get("/")
        await client.get(f"/tasks/{task.task_id}")
        await client.get("/api/v1/tasks")
        await client.post(f"/api/v1/tasks/{task.task_id}/claim")
        done = await client.post(f"/api/v1/tasks/{task.task_id}/done", json={"note": f"{PHONE} に電話して伝えた"})
        assert done.status_code == 200
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert task.receipt_no in logged  # the desk's own reference is fine
    for personal in (NAME, PHONE, EMAIL, "03-1111-2222", "待合室", "伝えた"):
        assert personal not in logged
