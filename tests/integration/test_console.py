"""The operators' console on real Postgres: log-in, the task list over HTTP, and idempotent
recording of issued tasks. Sessions, CSRF and lock-out in depth: test_console_security.py."""
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, func, select, update

from services.console import web
from services.console.accounts import add_operator
from services.console.orm import operators, tasks
from services.console.tasks import open_tasks, record_tasks
from shared import events as ev
from shared.messaging import Delivery
from shared.db import make_engine, make_sessions
from tests.console_support import csrf_token

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
async def sessions(desk):
    engine = make_engine(desk, pool_size=2)
    async with engine.begin() as conn:  # other tiers share the database: start from no tasks
        await conn.execute(text("truncate console.tasks, console.inbox cascade"))  # with their outcomes, notes
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
async def operator(sessions):
    return await add_operator(sessions, "Sato", "佐藤 花子", PASSWORD)


@pytest.fixture
async def client(desk, sessions):
    app = FastAPI()
    web.install(app, sessions, desk)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as http:
        yield http


def issued(receipt_no: str, **changes) -> ev.TaskIssued:
    fields = dict(
        task_id=uuid.uuid4(), consultation_id=uuid.uuid4(), receipt_no=receipt_no, kind="call",
        due_starts_at=datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc),  # 10:00 in Japan, a Wednesday
        due_ends_at=datetime(2026, 11, 25, 1, 30, tzinfo=timezone.utc),
        consultant_name="山田 太郎", contact=ev.Contact(method="phone", phone="0312345678"),
        category="online", summary="口コミ欄に悪質な投稿", urls=["https://example.com/review/1"],
    )
    return ev.TaskIssued(**(fields | changes))


async def log_in(client: httpx.AsyncClient, login: str = "sato", password: str = PASSWORD) -> httpx.Response:
    """As a browser does: the form first, then the post with its token."""
    form = await client.get("/login")
    token = csrf_token(form) if form.status_code == 200 else ""
    return await client.post("/login", data={"login": login, "password": password, "csrf_token": token})


async def test_the_console_requires_a_log_in(client):
    page = await client.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    api = await client.get("/api/v1/tasks")
    assert api.status_code == 401
    assert api.json() == {"code": "unauthenticated", "detail": "ログインしてください。"}
    assert (await client.get("/login")).status_code == 200


async def test_a_wrong_password_or_unknown_login_is_refused_alike(client, operator):
    wrong = await log_in(client, password="not the password")
    unknown = await log_in(client, login="nobody-here")
    for refused in (wrong, unknown):
        assert refused.status_code == 401
        assert web.LOGIN_REFUSED in refused.text
        assert "set-cookie" not in refused.headers  # the log-in form's session stays as it was
    assert (await client.get("/")).status_code == 303


async def test_an_operator_sees_open_tasks_escaped(client, sessions, operator):
    task = issued("PH-261124-90011", summary="<script>alert('x')</script>\n二行目",
                  urls=["https://example.com/review/1", "javascript:alert(1)"])
    await record_tasks([Delivery(ev.wrap(task, task.consultation_id), task)], sessions)

    logged_in = await log_in(client, login=" SATO ")
    assert logged_in.status_code == 303 and logged_in.headers["location"] == "/"
    cookie = logged_in.headers["set-cookie"].lower()
    assert "samesite=lax" in cookie and "httponly" in cookie
    assert "secure" not in cookie  # PAYHARA_ENV=test runs on http://
    page = await client.get("/")
    assert page.status_code == 200
    assert "PH-261124-90011" in page.text and "佐藤 花子" in page.text
    assert "電話連絡" in page.text and "院内" not in page.text
    assert "11/25(水) 10:00〜10:30" in page.text and "期限超過" in page.text  # overdue, so on today's list
    assert "alert" not in page.text  # the summary and the URLs are on the task's own page only
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    detail = await client.get(f"/tasks/{task.task_id}")
    assert detail.status_code == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in detail.text
    assert "<script" not in detail.text
    assert 'href="https://example.com/review/1"' in detail.text
    assert 'href="javascript:' not in detail.text and "javascript:alert(1)" in detail.text

    api = await client.get("/api/v1/tasks")
    mine = [t for t in api.json() if t["receipt_no"] == "PH-261124-90011"]
    assert api.status_code == 200 and len(mine) == 1
    assert mine[0]["kind_label"] == "電話連絡" and mine[0]["contact"]["phone"] == "0312345678"

    assert (await client.post("/logout", data={"csrf_token": csrf_token(page)})).status_code == 303
    assert (await client.get("/")).status_code == 303


async def test_a_disabled_operator_is_logged_out_at_the_next_request(client, sessions):
    await add_operator(sessions, "suzuki", "鈴木 一郎", PASSWORD)
    assert (await log_in(client, login="suzuki")).status_code == 303
    assert (await client.get("/")).status_code == 200
    async with sessions.begin() as session:
        await session.execute(update(operators).where(operators.c.login == "suzuki").values(disabled=True))
    assert (await client.get("/")).status_code == 303
    assert (await log_in(client, login="suzuki")).status_code == 401


async def test_adding_an_existing_login_resets_its_password(client, sessions):
    first = await add_operator(sessions, "takahashi", "高橋", "first password 1")
    again = await add_operator(sessions, "Takahashi", "高橋 次郎", "second password 2")
    assert again.id == first.id and again.display_name == "高橋 次郎"
    assert (await log_in(client, login="takahashi", password="first password 1")).status_code == 401
    assert (await log_in(client, login="takahashi", password="second password 2")).status_code == 303


async def test_a_redelivered_task_is_recorded_once(sessions):
    task = issued("PH-261124-90029")
    envelope = ev.wrap(task, task.consultation_id)
    assert await record_tasks([Delivery(envelope, task)], sessions) == 1
    assert await record_tasks([Delivery(envelope, task)], sessions) == 0
    # the same task in a new event (a re-issue by the producer) changes nothing either
    assert await record_tasks([Delivery(ev.wrap(task, task.consultation_id), task)], sessions) == 0
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(tasks).where(tasks.c.task_id == task.task_id))
    assert count == 1


async def test_open_tasks_come_by_due_time_then_issue_time(sessions):
    base = datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)
    later = issued("PH-261124-90037", due_starts_at=base + timedelta(hours=2), due_ends_at=None)
    sooner = issued("PH-261124-90045", due_starts_at=base, due_ends_at=None)
    undated_new = issued("PH-261124-90052", kind="review", due_starts_at=None, due_ends_at=None)
    undated_old = issued("PH-261124-90060", kind="decline", due_starts_at=None, due_ends_at=None)
    for offset, task in enumerate((undated_old, later, undated_new, sooner)):
        envelope = ev.wrap(task, task.consultation_id).model_copy(
            update={"occurred_at": base - timedelta(days=10 - offset)})
        await record_tasks([Delivery(envelope, task)], sessions)
    order = [row.receipt_no for row in await open_tasks(sessions)
             if row.receipt_no in {"PH-261124-90037", "PH-261124-90045", "PH-261124-90052", "PH-261124-90060"}]
    assert order == ["PH-261124-90045", "PH-261124-90037", "PH-261124-90060", "PH-261124-90052"]


async def test_the_new_task_kinds_are_kept_and_labelled_in_japanese(client, sessions, operator):
    unreachable = issued("PH-261124-90078", kind="unreachable", reason="no_answer_after_last_attempt",
                         due_starts_at=None, due_ends_at=None)
    unschedulable = issued("PH-261124-90086", kind="unschedulable", reason="no_free_slot_within_horizon",
                           due_starts_at=None, due_ends_at=None)
    for task in (unreachable, unschedulable):
        assert await record_tasks([Delivery(ev.wrap(task, task.consultation_id), task)], sessions) == 1
    await log_in(client)
    labels = {t["receipt_no"]: t["kind_label"] for t in (await client.get("/api/v1/tasks")).json()}
    assert labels["PH-261124-90078"] == "電話がつながらない"
    assert labels["PH-261124-90086"] == "日程を調整できない"
    assert "電話がつながらない" in (await client.get("/")).text
