"""The supervisors' view (`GET /supervisor`, `GET /api/v1/supervisor`) on real Postgres: tasks,
call outcomes and claims seeded across days with known answers, each figure checked; a claim
released, left to expire or taken over still counts for the operator who made it; operators
refused; the chart and the numbers on the page, no personal data and nothing in data_views; the
dead-letter count from the broker, and 取得できません when the broker is away. A screenshot at
1280 px (Debian's chromium) is kept in var/screenshots/ for a person to look at."""
import json
import re
import uuid
from contextlib import aclosing
from datetime import date, datetime, timedelta
from pathlib import Path

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text, update

from services.console import claims, closing, web
from services.console.accounts import add_operator
from services.console.orm import call_outcomes, data_views, tasks
from services.console.orm import claims as claim_history
from services.console.tasks import record_tasks
from services.dead_letters import dead_letter_queues
from services.notifier import orm as notifier_orm
from services.notifier.tasks import TaskOrder, place_orders
from shared import events as ev
from shared.calendar import JST
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from tests.support import ROOT, free_port

PASSWORD = "correct horse battery"
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=JST)  # a Wednesday
NAME, PHONE, EMAIL = "状況 太郎", "0311112222", "jokyo.taro@example.com"
CHROMIUM = Path("/usr/bin/chromium")


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=JST)


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
    return {"one": await add_operator(db, "sv-op1", "作業 一郎", PASSWORD),
            "two": await add_operator(db, "sv-op2", "作業 二郎", PASSWORD),
            "boss": await add_operator(db, "sv-boss", "監督 花子", PASSWORD, role="supervisor")}


class Seed:
    def __init__(self, db):
        self.db, self.n = db, 0

    async def task(self, kind="call", due=None, due_ends=None, promised=None, consultation=None,
                   issued=NOW - timedelta(hours=1), claimed=(), **columns) -> uuid.UUID:
        """A task as the notifier issues it, claimed by the console's use case (`claimed`:
        (operator, when) pairs, for 30 minutes each), then as the console left it (`columns`)."""
        self.n += 1
        cid = consultation or uuid.uuid4()
        event = ev.TaskIssued(
            task_id=uuid.uuid4(), consultation_id=cid, receipt_no=f"PH-261130-{self.n:05d}", kind=kind,
            booking_id=uuid.uuid4() if kind == "call" else None, due_starts_at=due, due_ends_at=due_ends,
            consultant_name=NAME, contact=ev.Contact(method="phone", phone=PHONE, email=EMAIL),
            category="in_person", summary="待合室で怒鳴られた", urls=[], contact_expected_from=promised)
        assert await record_tasks([Delivery(ev.wrap(event, cid), event)], self.db) == 1
        for operator, when in claimed:
            await claims.claim(self.db, event.task_id, operator, when, 30)
        async with self.db.begin() as conn:
            await conn.execute(update(tasks).where(tasks.c.task_id == event.task_id).values(issued_at=issued, **columns))
        return event.task_id

    async def call(self, consultation: uuid.UUID, when: datetime, operator, promised=None, outcome="no_answer"):
        """A call task closed with its outcome."""
        task_id = await self.task(consultation=consultation, promised=promised, issued=when - timedelta(hours=2),
                                  status="done", closed_at=when, closed_by=operator.id)
        async with self.db.begin() as conn:
            await conn.execute(insert(call_outcomes).values(
                task_id=task_id, consultation_id=consultation, receipt_no="PH-261130-00000",
                booking_id=uuid.uuid4(), attempt=1, outcome=outcome, operator_id=operator.id, recorded_at=when))


@pytest.fixture(scope="module")
async def seeded(db, staff) -> dict:
    s, one, two = Seed(db), staff["one"], staff["two"]
    # the backlog (open tasks)
    oldest = await s.task(due=at(12, 1), issued=at(11, 30, 8))  # overdue, the oldest unclaimed
    await s.task(due=at(12, 2, 9), due_ends=at(12, 2, 9, 30), issued=at(11, 30, 9))  # overdue since 9:30
    claimed_now = await s.task(due=at(12, 2, 14), issued=at(11, 29), claimed=[(one, NOW)])  # not "unclaimed"
    await s.task(due=at(12, 2, 15), claimed=[(one, at(11, 28, 10))])
    await s.task("email", due=at(12, 2, 16))
    await s.task("review", due=at(12, 4))
    await s.task(due=at(12, 5, 11))  # a Saturday: shown only because something is due
    await s.task(due=at(12, 20))  # past the 10 open days
    await s.task("review")
    await s.task("decline")
    # first contact within the promise (last 30 days by promised day)
    a, b, c, d, e, f, g, h, i = (uuid.uuid4() for _ in range(9))
    await s.call(a, at(11, 30, 15), two, promised=date(2026, 11, 30))  # within
    await s.task("email", consultation=b, promised=date(2026, 11, 30), status="done",  # 12/1 00:30 JST: late
                 closed_at=at(12, 1, 0, 30), closed_by=two.id, issued=at(11, 29))
    await s.call(c, at(11, 26), two, promised=date(2026, 11, 27))  # no answer, but tried: within
    await s.task("review", consultation=d, promised=date(2026, 11, 28), status="done", closed_at=at(11, 20),
                 issued=at(11, 19))  # a review closed is no contact: late, still waiting
    await s.task("review", consultation=e, promised=date(2026, 12, 2), status="done", issued=at(11, 30))  # today
    await s.call(f, at(10, 2), two, promised=date(2026, 10, 1))  # promised before the 30 days
    await s.call(g, at(12, 2, 9), two, promised=date(2026, 12, 2), outcome="reached")  # within
    await s.call(h, at(11, 30), two)  # no promise (an older task): left out
    await s.task("review", consultation=i, promised=date(2026, 11, 20), status="done", issued=at(11, 19))
    await s.call(i, at(11, 22), two, promised=date(2026, 11, 20))  # late
    await s.call(i, at(11, 23), two, promised=date(2026, 11, 20), outcome="reached")
    for consultation, calls in ((uuid.uuid4(), 3), (uuid.uuid4(), 4)):  # 3 calls and more
        for n in range(calls):
            await s.call(consultation, at(11, 10 + n), two)
    # today's work of operator one
    await s.task("email", status="done", closed_at=at(12, 2, 9, 40), closed_by=one.id,
                 claimed=[(one, at(12, 2, 9))])
    return {"oldest": oldest, "claimed_now": claimed_now}


@pytest.fixture
def app(desk, db) -> FastAPI:
    app = FastAPI()
    web.install(app, db, desk, clock=lambda: NOW)
    return app


async def logged_in(app: FastAPI, login: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]*)"', form.text).group(1)
    assert (await client.post("/login", data={"login": login, "password": PASSWORD,
                                              "csrf_token": token})).status_code == 303
    return client


async def figures(app) -> dict:
    async with aclosing(await logged_in(app, "sv-boss")) as client:
        answer = await client.get("/api/v1/supervisor")
    assert answer.status_code == 200
    return answer.json()


async def test_each_figure_has_its_known_answer(app, seeded):
    f = await figures(app)
    backlog = [(r["label"], r["tasks"]) for r in f["backlog"]]
    assert backlog == [("期限超過", 2), ("今日 12/2(水)", 3), ("12/3(木)", 0), ("12/4(金)", 1), ("12/5(土)", 1),
                       ("12/7(月)", 0), ("12/8(火)", 0), ("12/9(水)", 0), ("12/10(木)", 0), ("12/11(金)", 0),
                       ("12/14(月)", 0), ("12/15(火)", 0), ("それ以降（12/16(水)〜）", 1), ("期日なし", 2)]
    assert f["backlog"][1]["by_kind"] == {"call": 2, "email": 1}
    assert f["open_tasks"] == 10 and f["by_kind"] == {"call": 6, "review": 2, "decline": 1, "email": 1}
    assert f["promise"] == {"within": 3, "late": 2, "late_waiting": 1, "due_today": 1, "share_percent": 50.0,
                            "days": 30}
    assert f["attempts"] == {"1": 4, "2": 1, "3+": 2}  # a, c, g, h once; i twice; 3 and 4 calls (f: before)
    assert f["work"] == [
        {"display_name": "作業 一郎", "claimed_today": 2, "claimed_week": 3, "closed_today": 1, "closed_week": 1},
        {"display_name": "作業 二郎", "claimed_today": 0, "claimed_week": 0, "closed_today": 1, "closed_week": 5}]
    oldest = f["oldest_unclaimed"]
    assert datetime.fromisoformat(oldest.pop("issued_at")) == at(11, 30, 8)
    assert oldest == {"receipt_no": "PH-261130-00001", "kind": "call", "kind_label": "電話連絡",
                      "age_minutes": 2 * 1440 + 120}
    assert isinstance(f["dead_letters"], int)


async def test_a_claim_counts_for_whoever_made_it_though_released_expired_or_taken_over(desk, db, staff):
    """Another week than the seeded one, with operators of its own: a claim released, a claim left
    to expire and taken over by someone else, and a claim extended (one task, counted once)."""
    three = await add_operator(db, "sv-op3", "引継 三郎", PASSWORD)
    four = await add_operator(db, "sv-op4", "引継 四郎", PASSWORD)
    s = Seed(db)
    issued = at(11, 16)
    released = await s.task("email", issued=issued, claimed=[(three, at(11, 18, 9))])
    await claims.release(db, released, three)
    await claims.claim(db, released, four, at(11, 18, 9, 30), 30)
    await closing.mark_done(db, released, four, "メールで返信した", at(11, 18, 9, 40))
    expired = await s.task("email", issued=issued, claimed=[(three, at(11, 17)), (four, at(11, 18, 9, 45))])
    await closing.mark_done(db, expired, four, "メールで返信した", at(11, 18, 9, 50))
    extended = await s.task("email", issued=issued, claimed=[(three, at(11, 18, 9, 5)), (three, at(11, 18, 9, 20))])
    await closing.mark_done(db, extended, three, "メールで返信した", at(11, 18, 9, 30))

    app = FastAPI()
    web.install(app, db, desk, clock=lambda: at(11, 18, 12))  # Wednesday 18 November
    work = {w.pop("display_name"): w for w in (await figures(app))["work"]}
    assert work["引継 三郎"] == {"claimed_today": 2, "claimed_week": 3, "closed_today": 1, "closed_week": 1}
    assert work["引継 四郎"] == {"claimed_today": 2, "claimed_week": 2, "closed_today": 2, "closed_week": 2}
    async with db() as conn:
        made = (await conn.execute(select(claim_history.c.task_id, claim_history.c.operator_id).where(
            claim_history.c.task_id.in_([released, expired, extended])).order_by(claim_history.c.claimed_at))).all()
    assert [tuple(row) for row in made] == [
        (expired, three.id), (released, three.id), (extended, three.id), (extended, three.id), (released, four.id),
        (expired, four.id)]


async def test_the_console_keeps_the_promised_day_the_notifier_sends(desk, db):
    engine = make_engine(desk)
    notifier = make_sessions(engine)
    cid = uuid.uuid4()
    async with notifier.begin() as session:
        await session.execute(insert(notifier_orm.consultations).values(
            consultation_id=cid, receipt_no="PH-261202-00077", consultant_name=NAME, contact_method="phone",
            phone=PHONE, category="online", summary="口コミ", urls=[], received_at=at(12, 2, 17),
            contact_expected_from=date(2026, 12, 3)))
        await place_orders(session, [TaskOrder(cid, "review", reason="member_not_found")])
    async with notifier() as session:
        body = (await session.execute(select(notifier_orm.outbox.c.body).where(
            notifier_orm.outbox.c.correlation_id == cid))).scalar_one()
    await engine.dispose()
    event = ev.TaskIssued.model_validate(json.loads(body)["data"])
    assert event.contact_expected_from == date(2026, 12, 3)
    assert await record_tasks([Delivery(ev.wrap(event, cid), event)], db) == 1
    async with db() as conn:
        assert (await conn.execute(select(tasks.c.contact_expected_from).where(
            tasks.c.task_id == event.task_id))).scalar_one() == date(2026, 12, 3)
        await conn.execute(tasks.delete().where(tasks.c.task_id == event.task_id))
        await conn.commit()


async def test_operators_are_refused(app, staff):
    async with aclosing(await logged_in(app, "sv-op1")) as client:
        assert (await client.get("/supervisor")).status_code == 403
        assert (await client.get("/api/v1/supervisor")).status_code == 403
        assert "/supervisor" not in (await client.get("/phone")).text  # no link in the menu


async def test_the_page_shows_the_chart_and_the_numbers_and_no_personal_data(app, db, seeded):
    async with aclosing(await logged_in(app, "sv-boss")) as client:
        page = await client.get("/supervisor")
    assert page.status_code == 200
    html = page.text
    chart = re.search(r'<svg class="chart" id="backlog-chart" role="img" aria-label="([^"]*)"', html)
    assert chart and "期限超過 2件" in chart.group(1) and "期日なし 2件" in chart.group(1)
    assert html.count('class="bar') == 6 and "<script" not in html and "style=" not in html
    assert re.search(r"<th scope=\"row\">今日 12/2\(水\)</th><td class=\"n\">3</td>", html)
    assert "50.0<small>%</small>" in html and "期限内 3件・遅れ 3件" in html
    assert "2日2時間" in html and "PH-261130-00001" in html
    assert "作業 一郎" in html and "作業 二郎" in html
    for personal in (NAME, PHONE, EMAIL, "03-1111-2222", "待合室"):
        assert personal not in html
    async with db() as conn:
        assert (await conn.execute(select(data_views))).all() == []
    await screenshot(html)


async def screenshot(html: str) -> None:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium for the screenshot")
    from playwright.async_api import async_playwright

    shots = ROOT / "var" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM))
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.set_content(html)
        await page.screenshot(path=shots / "console_supervisor_1280.png", full_page=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 1280
        await browser.close()


async def test_the_dead_letters_are_counted_without_being_taken(app, desk, seeded):
    dlq = next(iter(dead_letter_queues()))
    before = (await figures(app))["dead_letters"]
    connection = await aio_pika.connect(desk.amqp_url)
    async with connection:
        channel = await connection.channel()
        for _ in range(2):
            await channel.default_exchange.publish(aio_pika.Message(b"{}", message_id=str(uuid.uuid4())), dlq)
        try:
            assert (await figures(app))["dead_letters"] == before + 2
            assert (await figures(app))["dead_letters"] == before + 2  # nothing taken
        finally:
            await (await channel.declare_queue(dlq, passive=True)).purge()


async def test_the_page_still_answers_when_the_broker_is_away(desk, db, staff, seeded):
    away = desk.model_copy(update={"amqp_url": f"amqp://guest:guest@127.0.0.1:{free_port()}/"})
    app = FastAPI()
    web.install(app, db, away, clock=lambda: NOW)
    async with aclosing(await logged_in(app, "sv-boss")) as client:
        page = await client.get("/supervisor")
        assert page.status_code == 200 and "取得できません" in page.text and "期限超過" in page.text
        assert (await client.get("/api/v1/supervisor")).json()["dead_letters"] is None
