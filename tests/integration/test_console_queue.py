"""The queue and closing tasks, on real Postgres with an injected clock: by today on the Japan
calendar (overdue marked) and later days on their own tab, whatever the server's date in UTC;
kinds and reasons in Japanese (never a bare code), phone numbers as written in Japan, who holds
each task, the summary off the queue; and `done` for every task that is neither a call nor a
review: by its holder only, with a note, once."""
import asyncio
import re
import uuid
from contextlib import aclosing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select, text

from services.console import web
from services.console.orm import operators, outbox, task_notes, tasks
from services.console.passwords import hash_password
from services.console.review_labels import DECISION_REASONS
from services.console.task_reasons import TASK_REASONS, task_reason_label
from services.console.tasks import record_tasks
from shared import events as ev
from shared.calendar import JST
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from tests.console_support import Clock, browser, csrf_token

ROOT = Path(__file__).parents[2]
PASSWORD = "correct horse battery"
OPERATORS = ["queue-a", "queue-b", "queue-c"]
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=JST)  # a Wednesday, 10:00 in Japan (01:00 UTC)


@pytest.fixture(scope="module")
async def db(desk):
    engine = make_engine(desk, pool_size=6)
    async with engine.begin() as conn:  # the queue lists every open task: start from none
        await conn.execute(text("truncate console.tasks, console.inbox cascade"))
        password_hash = hash_password(PASSWORD)
        await conn.execute(insert(operators).values([
            {"login": login, "display_name": f"窓口{n}", "password_hash": password_hash}
            for n, login in enumerate(OPERATORS)]))
    yield make_sessions(engine)
    async with engine.begin() as conn:
        await conn.execute(text("truncate console.tasks, console.inbox cascade"))
    await engine.dispose()


@pytest.fixture
async def empty_queue(db):
    async with db.begin() as conn:
        await conn.execute(text("truncate console.tasks cascade"))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def app(desk, db, clock) -> FastAPI:
    app = FastAPI()
    web.install(app, db, desk, clock=clock)
    return app


async def logged_in(app: FastAPI, login: str) -> httpx.AsyncClient:
    """A browser logged in by the form, whose API writes carry the session's CSRF header too."""
    client = browser(app)
    form = await client.get("/login")
    assert (await client.post("/login", data={"login": login, "password": PASSWORD,
                                              "csrf_token": csrf_token(form)})).status_code == 303
    client.headers["X-CSRF-Token"] = csrf_token(await client.get("/phone"))
    return client


async def issue(db, kind: str = "call", due: tuple | None = None, issued_ago: timedelta = timedelta(days=1),
                **changes) -> ev.TaskIssued:
    starts, ends = due or (None, None)
    fields = dict(
        task_id=uuid.uuid4(), consultation_id=uuid.uuid4(), receipt_no=f"PH-261202-{uuid.uuid4().int % 10**5:05d}",
        kind=kind, booking_id=uuid.uuid4() if kind == "call" else None, due_starts_at=starts, due_ends_at=ends,
        consultant_name="山田 太郎", contact=ev.Contact(method="phone", phone="0312345678"),
        category="online", summary="口コミ欄に事実と違う投稿", urls=["https://example.com/review/1"])
    task = ev.TaskIssued(**(fields | changes))
    envelope = ev.wrap(task, task.consultation_id).model_copy(update={"occurred_at": NOW - issued_ago})
    assert await record_tasks([Delivery(envelope, task)], db) == 1
    return task


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=JST)


def slot(day: int, hour: int, minute: int = 0) -> tuple[datetime, datetime]:
    return at(day, hour, minute), at(day, hour, minute) + timedelta(minutes=30)


def listed(page: httpx.Response) -> list[str]:
    """The receipt numbers of the queue's lines, in order."""
    return re.findall(r'<a href="/tasks/[^"]+">(PH-[0-9-]+)<', page.text)


def line_of(page: httpx.Response, receipt_no: str) -> str:
    """The table row of a receipt, and nothing after it (the page's footer names the buttons too)."""
    return next(row.split("</tr>")[0] for row in page.text.split("<tr") if f">{receipt_no}<" in row)


# --- which tasks, in which order ----------------------------------------------------------

async def test_the_queue_lists_overdue_and_today_s_tasks_then_undated_and_later_days_on_a_tab(
        app, db, clock, empty_queue):
    yesterday = await issue(db, due=slot(1, 15))
    this_morning = await issue(db, due=slot(2, 9, 15))
    this_afternoon = await issue(db, due=slot(2, 14))
    late_tonight = await issue(db, due=(at(2, 23, 30), None))
    undated_old = await issue(db, kind="review", reason="member_unknown", issued_ago=timedelta(days=3))
    undated_new = await issue(db, kind="decline", reason="withdrawn_member", issued_ago=timedelta(hours=1))
    midnight = await issue(db, due=slot(3, 0))
    next_week = await issue(db, kind="email", due=slot(9, 9), contact=ev.Contact(method="email", email="a@example.com"))
    async with aclosing(await logged_in(app, OPERATORS[0])) as client:
        page = await client.get("/")
        assert listed(page) == [t.receipt_no for t in (yesterday, this_morning, this_afternoon, late_tonight,
                                                       undated_old, undated_new)]
        assert "今日まで（6件）" in page.text and "明日以降（2件）" in page.text
        assert 'href="/upcoming"' in page.text and "予定日時を過ぎたタスクが2件あります" in page.text
        for overdue in (yesterday, this_morning):
            assert 'class="overdue"' in line_of(page, overdue.receipt_no)
            assert "期限超過" in line_of(page, overdue.receipt_no)
        for due in (this_afternoon, late_tonight, undated_old):
            assert "期限超過" not in line_of(page, due.receipt_no)
        assert "12/1(火) 15:00〜15:30" in line_of(page, yesterday.receipt_no)
        assert "指定なし" in line_of(page, undated_old.receipt_no)

        later = await client.get("/upcoming")
        assert listed(later) == [midnight.receipt_no, next_week.receipt_no]
        assert 'aria-current="page">明日以降（2件）' in later.text

    # 16:00 UTC is already tomorrow in Japan: midnight's task is today's now, and overdue
    clock.now = datetime(2026, 12, 2, 16, 0, tzinfo=timezone.utc)
    async with aclosing(await logged_in(app, OPERATORS[0])) as client:  # hours later: a new session
        page = await client.get("/")
        assert midnight.receipt_no in listed(page) and "期限超過" in line_of(page, midnight.receipt_no)
        assert listed(await client.get("/upcoming")) == [next_week.receipt_no]

        api = await client.get("/api/v1/tasks", params={"due": "later"})
        assert [t["receipt_no"] for t in api.json()] == [next_week.receipt_no]
        assert len((await client.get("/api/v1/tasks", params={"due": "today"})).json()) == 7
        assert len((await client.get("/api/v1/tasks")).json()) == 8
        assert (await client.get("/api/v1/tasks", params={"due": "yesterday"})).status_code == 422


async def test_an_empty_queue_says_so(app, empty_queue):
    async with aclosing(await logged_in(app, OPERATORS[0])) as client:
        assert "今日までに対応するタスクはありません" in (await client.get("/")).text
        assert "明日以降に予定されているタスクはありません" in (await client.get("/upcoming")).text


# --- how a line reads ---------------------------------------------------------------------

async def test_kinds_and_reasons_are_in_japanese_and_an_unknown_code_is_never_bare(app, db, empty_queue):
    given = {"review": "member_unknown", "decline": "no_member_behind_institution",
             "unreachable": "no_answer_after_last_attempt", "unschedulable": "no_free_slot_within_horizon",
             "bounced": "acknowledgement"}
    for kind, reason in given.items():
        await issue(db, kind=kind, reason=reason)
    odd = await issue(db, kind="unschedulable", reason="calendar_closed_all_month")
    async with aclosing(await logged_in(app, OPERATORS[0])) as client:
        page = await client.get("/")
        for kind, reason in given.items():
            assert TASK_REASONS[kind][reason] in page.text and reason not in page.text
        for label in ("会員確認", "対象外のご連絡", "電話がつながらない", "日程を調整できない", "メール不達"):
            assert label in page.text
        assert "その他（calendar_closed_all_month）" in line_of(page, odd.receipt_no)
        task_page = await client.get(f"/tasks/{odd.task_id}")
        assert "その他（calendar_closed_all_month）" in task_page.text
        bounced = [t for t in (await client.get("/api/v1/tasks")).json() if t["kind"] == "bounced"][0]
        assert (bounced["kind_label"], bounced["reason_label"]) == ("メール不達", "受付のお知らせ")


def test_every_reason_the_desk_puts_on_a_task_has_a_label():
    """Read from the producers' sources, so a new code fails here before an operator sees it bare."""
    def source(path: str) -> str:
        return (ROOT / path).read_text(encoding="utf-8")
    reviews = set(re.findall(r'_review\("([a-z_]+)"', source("services/eligibility/rules.py")))
    rejections = set(re.findall(r'Outcome\.REJECTED, "([a-z_]+)"', source("services/eligibility/rules.py")))
    rejections |= set(DECISION_REASONS["reject"])  # an operator's decision travels as the rejection's reason
    exhausted = set(ev.ExhaustedReason.__args__)
    unschedulable = set(re.findall(r'NO_FREE_SLOT = "([a-z_]+)"', source("services/scheduler/booking.py")))
    mails = {kind for path in (ROOT / "services" / "notifier").glob("*.py")
             for kind in re.findall(r'^KIND = "([a-z_]+)"', path.read_text(encoding="utf-8"), re.M)}
    assert len(reviews) == 9 and len(rejections) == 5 and unschedulable and len(mails) >= 4
    for kind, codes in (("review", reviews), ("decline", rejections), ("unreachable", exhausted),
                        ("unschedulable", unschedulable), ("bounced", mails)):
        assert codes <= set(TASK_REASONS[kind]), (kind, codes - set(TASK_REASONS[kind]))
    assert task_reason_label("decline", "brand_new") == "その他（brand_new）"
    assert task_reason_label("call", None) is None


async def test_phone_numbers_read_as_written_in_japan_and_the_summary_stays_off_the_queue(app, db, empty_queue):
    landline = await issue(db, contact=ev.Contact(method="phone", phone="0312345678"))
    mobile = await issue(db, contact=ev.Contact(method="phone", phone="090 1234 5678"))
    typed = await issue(db, contact=ev.Contact(method="phone", phone="内線 1234"))
    by_mail = await issue(db, kind="email", contact=ev.Contact(method="email", phone="0312345678",
                                                               email="hanako@example.com"))
    async with aclosing(await logged_in(app, OPERATORS[0])) as client:
        page = await client.get("/")
        assert '<a href="tel:+81312345678" class="nowrap">03-1234-5678</a>' in line_of(page, landline.receipt_no)
        assert '<a href="tel:+819012345678" class="nowrap">090-1234-5678</a>' in line_of(page, mobile.receipt_no)
        assert "内線 1234" in line_of(page, typed.receipt_no) and "tel:" not in line_of(page, typed.receipt_no)
        assert "mailto:hanako@example.com" in line_of(page, by_mail.receipt_no)  # the way they asked for
        assert "山田 太郎" in line_of(page, landline.receipt_no)
        assert "口コミ欄に事実と違う投稿" not in page.text and "example.com/review" not in page.text
        task_page = await client.get(f"/tasks/{landline.task_id}")
        assert "口コミ欄に事実と違う投稿" in task_page.text and ">03-1234-5678</a>" in task_page.text
        api = [t for t in (await client.get("/api/v1/tasks")).json() if t["task_id"] == str(mobile.task_id)][0]
        assert api["contact"] | {"method": None} == {"method": None, "phone": "090 1234 5678",
                                                     "phone_label": "090-1234-5678", "email": None}


async def test_the_queue_shows_who_holds_each_task(app, db, clock, empty_queue):
    free, taken, left = await issue(db), await issue(db), await issue(db)
    first, second = await logged_in(app, OPERATORS[0]), await logged_in(app, OPERATORS[1])
    async with aclosing(first), aclosing(second):
        token = csrf_token(await first.get("/"))
        claimed = await first.post(f"/tasks/{taken.task_id}/claim", data={"csrf_token": token})
        assert claimed.status_code == 303 and claimed.headers["location"] == f"/tasks/{taken.task_id}"
        await second.post(f"/api/v1/tasks/{left.task_id}/claim")
        mine, theirs = await first.get("/"), await second.get("/")
        assert "あなたが対応中" in line_of(mine, taken.receipt_no) and "10:30まで" in line_of(mine, taken.receipt_no)
        assert "窓口0 さんが対応中" in line_of(theirs, taken.receipt_no)
        assert "担当する" not in line_of(theirs, taken.receipt_no)
        assert "担当する" in line_of(theirs, free.receipt_no) and f"/tasks/{free.task_id}/claim" in line_of(
            theirs, free.receipt_no)
    clock.now += timedelta(minutes=31)  # the claims were left (and the sessions ended)
    async with aclosing(await logged_in(app, OPERATORS[0])) as first:
        later = await first.get("/")
        assert "窓口1 さん（期限切れ）" in line_of(later, left.receipt_no) and "引き継ぐ" in line_of(later, left.receipt_no)


# --- done ---------------------------------------------------------------------------------

async def test_done_closes_a_task_of_any_other_kind_by_its_holder_once_with_its_note(app, db, clock, empty_queue):
    task = await issue(db, kind="email", contact=ev.Contact(method="email", email="hanako@example.com"))
    holder, other = await logged_in(app, OPERATORS[0]), await logged_in(app, OPERATORS[1])
    async with aclosing(holder), aclosing(other):
        done = f"/api/v1/tasks/{task.task_id}/done"
        unclaimed = await holder.post(done, json={"note": "返信した"})
        assert unclaimed.status_code == 409 and unclaimed.json()["code"] == "not_claimed"
        assert (await holder.post(f"/api/v1/tasks/{task.task_id}/claim")).status_code == 200
        taken = await other.post(done, json={"note": "返信した"})
        assert taken.status_code == 409 and taken.json()["code"] == "task_taken"
        for body in ({}, {"note": ""}, {"note": "x" * 2001}, {"note": "ok", "extra": 1}):
            assert (await holder.post(done, json=body)).status_code == 422, body
        blank = await holder.post(done, json={"note": "   "})
        assert blank.status_code == 422 and "メモ" in blank.json()["detail"]
        control = await holder.post(done, json={"note": "返信\x1b"})
        assert control.status_code == 400 and control.json()["code"] == "invalid_characters"
        clicks = await asyncio.gather(*(holder.post(done, json={"note": " 12/2 10:05 メールで返信した "})
                                        for _ in range(2)))
        assert sorted(c.status_code for c in clicks) == [200, 409]
        answer = next(c for c in clicks if c.status_code == 200).json()
        assert answer == {"task_id": str(task.task_id), "receipt_no": task.receipt_no, "kind": "email",
                          "closed_at": clock.now.isoformat(), "note_length": len("12/2 10:05 メールで返信した")}
        assert next(c for c in clicks if c.status_code == 409).json()["code"] == "task_closed"
        assert task.receipt_no not in listed(await holder.get("/"))
    async with db() as conn:
        row = (await conn.execute(select(tasks).where(tasks.c.task_id == task.task_id))).one()
        notes = (await conn.scalars(select(task_notes.c.note).where(task_notes.c.task_id == task.task_id))).all()
        published = await conn.scalar(select(func.count()).select_from(outbox)
                                      .where(outbox.c.correlation_id == task.consultation_id))
    assert (row.status, row.closed_at) == ("done", clock.now) and notes == ["12/2 10:05 メールで返信した"]
    assert published == 0  # closing an operator's task tells no other service


@pytest.mark.parametrize("kind", ["decline", "unreachable", "unschedulable", "bounced"])
async def test_each_other_kind_is_done_by_the_form_on_its_page(app, db, kind, empty_queue):
    task = await issue(db, kind=kind, reason="acknowledgement" if kind == "bounced" else None)
    async with aclosing(await logged_in(app, OPERATORS[2])) as client:
        page = await client.get(f"/tasks/{task.task_id}")
        assert 'id="done-form"' not in page.text and "担当してから書けます" in page.text
        token = csrf_token(page)
        await client.post(f"/tasks/{task.task_id}/claim", data={"csrf_token": token})
        page = await client.get(f"/tasks/{task.task_id}")
        assert 'id="done-form"' in page.text and "required" in page.text
        empty = await client.post(f"/tasks/{task.task_id}/done", data={"csrf_token": token, "note": " "})
        assert empty.status_code == 422 and "必須" in empty.text
        done = await client.post(f"/tasks/{task.task_id}/done", data={"csrf_token": token, "note": "電話でお伝えした"})
        assert done.status_code == 303 and done.headers["location"] == f"/tasks/{task.task_id}"
        shown = await client.get(f"/tasks/{task.task_id}")
        assert "このタスクは対応済みです" in shown.text and "電話でお伝えした" in shown.text
        again = await client.post(f"/tasks/{task.task_id}/done", data={"csrf_token": token, "note": "もう一度"})
        assert again.status_code == 409 and "すでに対応済み" in again.text


async def test_calls_and_reviews_are_not_closed_by_done(app, db, empty_queue):
    call, review = await issue(db), await issue(db, kind="review", reason="member_unknown")
    async with aclosing(await logged_in(app, OPERATORS[0])) as client:
        for task in (call, review):
            await client.post(f"/api/v1/tasks/{task.task_id}/claim")
            refused = await client.post(f"/api/v1/tasks/{task.task_id}/done", json={"note": "済"})
            assert refused.status_code == 409 and refused.json()["code"] == "wrong_task_kind"
            assert 'id="done-form"' not in (await client.get(f"/tasks/{task.task_id}")).text
        missing = await client.post(f"/api/v1/tasks/{uuid.uuid4()}/done", json={"note": "済"})
        assert missing.status_code == 404
