"""An operator's day in the console, in headless Chromium (Debian's, driven by Playwright) against a
real uvicorn over the test database: log in, claim a call from the queue and record that nobody
answered (call.outcome_recorded.v1 in the outbox), see the next attempt the scheduler issues,
decide a review (eligibility.decided.v1), and enter a consultation taken on the phone until intake's
receipt number shows. The scheduler, eligibility and intake are simulated by calling the console's
own handlers. Screenshots at 1280 px are kept in var/screenshots/console_flow_*.png."""
import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect
from sqlalchemy import select

from services.console import handlers, web
from services.console.accounts import add_operator
from services.console.orm import outbox, phone_submissions
from services.console.phone_answers import keep_answers
from services.console.tasks import record_tasks
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from tests.browser.support import SHOTS, serving

DESKTOP = {"width": 1280, "height": 900}
JAPAN = timezone(timedelta(hours=9))
PASSWORD = "correct horse battery"
LOGIN = f"flow-{uuid.uuid4().hex[:8]}"


def with_db(desk, work):
    """Run `work(sessions)` on an engine of its own, in an event loop of its own, on a thread of its
    own (Playwright's sync API keeps an event loop running on the test's thread)."""
    async def run():
        engine = make_engine(desk, pool_size=2)
        try:
            return await work(make_sessions(engine))
        finally:
            await engine.dispose()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=30)


@pytest.fixture(scope="module")
def server(desk):
    """The console's pages (web.install, as main.create_app composes them, without the broker: the
    outbox keeps what it would publish), on a free port, stopped at the end."""
    with_db(desk, lambda db: add_operator(db, LOGIN, "画面 確認", PASSWORD))
    engine = make_engine(desk)  # connects inside the server's own event loop

    @asynccontextmanager
    async def lifespan(_):
        yield
        await engine.dispose()
    app = FastAPI(lifespan=lifespan)
    web.install(app, make_sessions(engine), desk)
    with serving(app, "console") as address:
        yield address


def shot(page: Page, name: str) -> None:
    page.screenshot(path=SHOTS / f"console_flow_{name}.png", full_page=True)


def issue(desk, kind: str, due: datetime | None, **changes) -> ev.TaskIssued:
    """A task as the scheduler (call) or eligibility (review) issues it, recorded by the console."""
    consultation_id = changes.pop("consultation_id", uuid.uuid4())
    task = ev.TaskIssued(**({
        "task_id": uuid.uuid4(), "consultation_id": consultation_id,
        "receipt_no": f"PH-261130-{uuid.uuid4().int % 10**5:05d}", "kind": kind,
        "due_starts_at": due, "due_ends_at": due + timedelta(minutes=30) if due else None,
        "consultant_name": "見本 太郎", "contact": ev.Contact(method="phone", phone="0312345678"),
        "category": "in_person", "summary": "受付で大声で威圧された", "urls": []} | changes))

    async def work(db):
        assert await record_tasks([Delivery(ev.wrap(task, task.consultation_id), task)], db) == 1
    with_db(desk, work)
    return task


def published(desk, correlation_id: uuid.UUID, event_type: type[ev.Event]) -> list:
    async def work(db):
        async with db() as conn:
            return (await conn.scalars(select(outbox.c.body).where(
                outbox.c.correlation_id == correlation_id, outbox.c.routing_key == event_type.routing_key)
                .order_by(outbox.c.id))).all()
    return [event_type.model_validate(ev.Envelope.model_validate_json(b).data) for b in with_db(desk, work)]


def type_in(page: Page, selector: str, typed: str) -> None:
    page.click(selector)
    page.keyboard.type(typed)


def submit(page: Page, button) -> None:
    with page.expect_navigation():
        button.click()


def test_an_operator_s_calls_review_and_phone_entry(desk, server, browser):
    now = datetime.now(timezone.utc)
    page = browser.new_page(viewport=DESKTOP, locale="ja-JP")
    page.set_default_timeout(5000)

    # log in with the login and password
    page.goto(server + "/")
    expect(page.locator("h1")).to_have_text("オペレーター ログイン")
    shot(page, "login")
    page.get_by_label("ログインID").click()
    page.keyboard.type(LOGIN)
    page.get_by_label("パスワード").click()
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("対応待ちのタスク")

    # a call due today, on the queue; claimed, it opens
    call = issue(desk, "call", now, booking_id=uuid.uuid4(), attempt=1)
    page.reload()
    row = page.locator("#tasks tbody tr", has_text=call.receipt_no)
    expect(row).to_have_count(1)
    shot(page, "queue")
    submit(page, row.get_by_role("button", name=re.compile("^担当する")))
    expect(page).to_have_url(f"{server}/tasks/{call.task_id}")
    expect(page.locator("#task-status")).to_contain_text("あなたが担当しています")

    # nobody answered: recorded with a note, the task is done and the outcome leaves by the outbox
    page.click("label[for=outcome-no_answer]")
    type_in(page, "#note", "留守番電話。夕方にかけ直す。")
    shot(page, "call")
    submit(page, page.get_by_role("button", name="結果を記録してタスクを完了する"))
    expect(page.locator("#call-outcome")).to_contain_text("出なかった")
    expect(page.locator("#notes")).to_contain_text("留守番電話。夕方にかけ直す。")
    shot(page, "call_done")
    (outcome,) = published(desk, call.consultation_id, ev.CallOutcomeRecorded)
    assert (outcome.booking_id, outcome.attempt, outcome.outcome, outcome.note_length) == (
        call.booking_id, 1, "no_answer", len("留守番電話。夕方にかけ直す。"))

    # the scheduler books the second attempt for tomorrow at 10:00 (Japan): on the later tab
    tomorrow = (now.astimezone(JAPAN) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    again = issue(desk, "call", tomorrow.astimezone(timezone.utc), consultation_id=call.consultation_id,
                  receipt_no=call.receipt_no, booking_id=call.booking_id, attempt=2)
    page.get_by_role("link", name="対応待ちのタスクへ戻る").click()
    expect(page.locator("#tasks tbody tr", has_text=call.receipt_no)).to_have_count(0)
    page.get_by_role("link", name=re.compile("^明日以降")).click()
    later = page.locator("#tasks tbody tr", has_text=call.receipt_no)
    expect(later).to_have_count(1)
    expect(later.locator("td.kind")).to_contain_text("2回目")
    expect(later.locator(f"a[href='/tasks/{again.task_id}']")).to_have_count(1)
    shot(page, "later")

    # a review with its candidates: opened, claimed and confirmed with a reason
    review = issue(desk, "review", now, reason="member_unknown", consultant_name="架空 花子")
    requested = ev.EligibilityReviewRequested(
        consultation_id=review.consultation_id, receipt_no=review.receipt_no, reason="member_unknown",
        candidates=[ev.ReviewCandidate(ref="M0002", name="架空 花子", why="same_name")])
    with_db(desk, lambda db: handlers.review_requested(
        [Delivery(ev.wrap(requested, requested.consultation_id), requested)], db))
    page.get_by_role("link", name=re.compile("^今日まで")).click()
    page.locator("#tasks tbody tr", has_text=review.receipt_no).get_by_role("link", name=re.compile("のタスクを開く$")).click()
    expect(page).to_have_url(f"{server}/tasks/{review.task_id}")
    expect(page.locator("#candidates")).to_contain_text("M0002")
    submit(page, page.get_by_role("button", name="このタスクを担当する"))
    page.click("label[for=decision-member_no_typo]")
    type_in(page, "#note", "M0002 の方と電話で確認")
    shot(page, "review")
    submit(page, page.get_by_role("button", name="判断を記録してタスクを完了する"))
    expect(page.locator("#review-decision")).to_contain_text("対象として確認する")
    shot(page, "review_done")
    (decided,) = published(desk, review.consultation_id, ev.EligibilityDecided)
    assert (decided.decision, decided.reason, decided.receipt_no) == ("confirm", "member_no_typo", review.receipt_no)

    # a consultation taken on the phone
    page.get_by_role("link", name="電話で受けた相談の入力").click()
    expect(page.locator("h1")).to_have_text("電話で受けた相談の入力")
    submission_id = uuid.UUID(page.locator("input[name=submission_id]").get_attribute("value"))
    type_in(page, "#f-name", "見本 太郎")
    type_in(page, "#f-name_kana", "みほん たろう")
    page.click("label[for=f-role-member]")
    type_in(page, "#f-member_no", "M0001")
    page.click("label[for=f-contact_method-phone]")
    type_in(page, "#f-phone", "03-1234-5678")
    page.click("label[for=f-preferred_time-morning]")
    page.click("label[for=f-category-in_person]")
    type_in(page, "#f-summary", "受付で大声で威圧され、診療の指示を拒まれました。")
    page.click("label[for=f-consent]")
    shot(page, "phone")
    submit(page, page.get_by_role("button", name="受付システムに送信する"))
    expect(page).to_have_url(f"{server}/phone/{submission_id}")
    expect(page.locator("#waiting")).to_contain_text("確認中です")
    shot(page, "phone_waiting")

    # intake's answer, delivered to the console: the page shows the receipt number once refreshed
    async def answered(db):
        async with db() as conn:
            assert await conn.scalar(select(phone_submissions.c.submission_id)
                                     .where(phone_submissions.c.submission_id == submission_id))
        accepted = ev.ConsultationSubmissionAccepted(
            submission_id=submission_id, operator_id=sent.operator_id, consultation_id=uuid.uuid4(),
            receipt_no="PH-261130-00042", contact_expected_from=date(2026, 12, 1))
        await keep_answers([Delivery(ev.wrap(accepted, accepted.consultation_id), accepted)], db)
    (sent,) = published(desk, submission_id, ev.ConsultationSubmitted)
    with_db(desk, answered)
    # the waiting page refreshes itself every second (a meta refresh): no reload that could race it
    expect(page.locator("#receipt-no")).to_have_text("PH-261130-00042")
    expect(page.locator("#status-code")).to_be_visible()
    shot(page, "phone_accepted")
    page.close()
