"""The operator's flow in headless Chromium (Debian's, driven by Playwright) with every service a
real process (`payhara run`, tests/support.DeskProcesses) on the real broker and database:
a consultant asks for a call on intake's web form; the operator sees the call task come into the
console's queue, claims it, records 不在 (no_answer), and sees the scheduler's next attempt at the
time it booked; a consultation with a name that does not match its member number goes to a
review, which the operator confirms, and the consultation moves on to a contact task whose page
lists the acknowledgement e-mail the notifier sent; a
consultation taken on the phone is entered in the console and intake's receipt number shows.
Nothing is simulated: every hop is an event between processes. Screenshots at 1280 px are kept
in var/screenshots/desk_flow_*.png."""
import asyncio
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time as clock_time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from playwright.sync_api import Page, expect

from shared.db import libpq_dsn
from tests.browser.support import SHOTS
from tests.support import ACTIVE_MEMBERS, OPERATOR, DeskProcesses, seed

DESKTOP = {"width": 1280, "height": 900}
JAPAN = ZoneInfo("Asia/Tokyo")
WEEKDAYS = "月火水木金土日"
TASK_WAIT_S = 30  # every wait for another process is bounded by this


def off_the_test_thread(make_coroutine):
    """Run a coroutine in an event loop and thread of its own (Playwright's sync API keeps an event
    loop on the test's thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make_coroutine()).result(timeout=60)


def query(desk, sql: str, *args) -> list:
    async def fetch():
        connection = await asyncpg.connect(libpq_dsn(desk.database_url))
        try:
            return await connection.fetch(sql, *args)
        finally:
            await connection.close()
    return off_the_test_thread(fetch)


@pytest.fixture(scope="module")
def processes(desk, tmp_path_factory):
    """Intake, eligibility, scheduler, notifier, console and the SMTP sink, each its own process on
    a free port, with the demo registry and the test operator; all stopped at the end."""
    off_the_test_thread(lambda: seed(desk))
    running = DeskProcesses(desk, tmp_path_factory.mktemp("desk_flow"), PAYHARA_SLOT_CAPACITY="50",
                            PAYHARA_RECEIPT_HOLD_S="5")  # receipts wait for their booking, as deployed
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=SHOTS / f"desk_flow_{name}.png", full_page=True)


def submit(page: Page, button) -> None:
    with page.expect_navigation():
        button.click()


def japan(moment: datetime) -> datetime:
    return moment.astimezone(JAPAN)


def queue_label(starts: datetime, ends: datetime) -> str:
    """A slot as the queue's line shows it: `11/30(月) 09:30〜10:00`, on the Japan wall clock."""
    s, e = japan(starts), japan(ends)
    return f"{s.month}/{s.day}({WEEKDAYS[s.weekday()]}) {s:%H:%M}〜{e:%H:%M}"


def page_label(starts: datetime, ends: datetime) -> str:
    """A slot as the task page shows it: `2026/11/30(月) 09:30〜10:00`."""
    s, e = japan(starts), japan(ends)
    return f"{s:%Y/%m/%d}({WEEKDAYS[s.weekday()]}) {s:%H:%M}〜{e:%H:%M}"


def tab_of(starts: datetime) -> str:
    """Where the queue lists a task due at `starts`: today's queue up to midnight in Japan, after
    that the 明日以降 tab (services/console/queue.py)."""
    midnight = datetime.combine(datetime.now(JAPAN).date() + timedelta(days=1), clock_time(0), tzinfo=JAPAN)
    return "/" if starts < midnight else "/upcoming"


def consultant_submits(browser, intake: str, name: str, kana: str, member_no: str, method: str,
                       shots: str | None = None) -> dict:
    """A consultant fills intake's web form as a member and sends it; the receipt page's numbers."""
    context = browser.new_context(viewport=DESKTOP, locale="ja-JP")
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(intake + "/")
        expect(page.locator("h1")).to_have_text("ご相談の受付")
        page.fill("#f-name", name)
        page.fill("#f-name_kana", kana)
        page.check("#f-role")  # 医師会の会員
        page.fill("#f-member_no", member_no)
        if method == "phone":
            page.check("#f-contact_method")
            page.fill("#f-phone", "03-1234-5678")
            page.check("#f-preferred_time-any")
        else:
            page.check("#f-contact_method-email")
            page.fill("#f-email", f"consultant-{uuid.uuid4().hex[:8]}@example.com")
        page.check("#f-category")  # 院内・施設内
        page.fill("#f-summary", "受付で大声で威圧され、診療の指示を拒まれました。")
        page.check("#f-consent")
        if shots:
            shot(page, f"{shots}_form")
        submit(page, page.get_by_role("button", name="送信する"))
        expect(page.locator("h1")).to_have_text("ご相談を受け付けました")
        if shots:
            shot(page, f"{shots}_receipt")
        receipt = {"receipt_no": page.inner_text("#receipt-no").strip(),
                   "status_token": page.inner_text("#status-token").strip()}
        assert re.fullmatch(r"PH-\d{6}-\d{5,}", receipt["receipt_no"]), receipt
        return receipt
    finally:
        context.close()


@pytest.fixture
def operator(processes, browser):
    """A page of its own for the operator, logged in to the console with the login and password."""
    context = browser.new_context(viewport=DESKTOP, locale="ja-JP")
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(processes.url("console") + "/")
        expect(page.locator("h1")).to_have_text("オペレーター ログイン")
        page.get_by_label("ログインID").fill(OPERATOR[0])
        page.get_by_label("パスワード").fill(OPERATOR[1])
        submit(page, page.get_by_role("button", name="ログイン"))
        expect(page.locator("h1")).to_have_text("対応待ちのタスク")
        yield page
    finally:
        context.close()


def listed(page: Page, console: str, receipt_no: str, kind: str, what: str):
    """Reload today's queue, then the later tab, until a line for `receipt_no` whose kind column
    starts with `kind` shows up (bounded); the tab it is on and its line."""
    deadline = time.monotonic() + TASK_WAIT_S
    while True:
        for tab in ("/", "/upcoming"):
            page.goto(console + tab)
            row = page.locator("#tasks tbody tr", has_text=receipt_no).filter(
                has=page.locator("td.kind", has_text=re.compile("^" + re.escape(kind))))
            if row.count() == 1:
                return tab, row
            assert row.count() == 0, f"{row.count()} lines of {what} for {receipt_no}"
        assert time.monotonic() < deadline, f"{what} for {receipt_no} not in the console after {TASK_WAIT_S}s"
        page.wait_for_timeout(500)


def open_tasks(page: Page, console: str, receipt_no: str) -> list[dict]:
    """The console's JSON API, with the operator's session: the open tasks of a receipt."""
    response = page.request.get(console + "/api/v1/tasks")
    assert response.ok, response.status
    return [t for t in response.json() if t["receipt_no"] == receipt_no]


def booking_of(desk, consultation_id: str):
    """The call booking as the scheduler keeps it, with its slot."""
    rows = query(desk, "SELECT b.id, b.attempt, b.status, s.starts_at, s.ends_at FROM scheduler.bookings b "
                       "JOIN scheduler.slots s ON s.id = b.slot_id WHERE b.consultation_id = $1",
                 uuid.UUID(consultation_id))
    assert len(rows) == 1, rows
    return rows[0]


def due_on_task_page(page: Page) -> str:
    return page.locator("#task-facts dt", has_text="予定日時").locator("xpath=following-sibling::dd[1]").inner_text()


def test_a_call_nobody_answers_comes_back_at_the_scheduler_s_next_slot(processes, desk, browser, operator):
    console = processes.url("console")
    member_no = "M0001"
    receipt = consultant_submits(browser, processes.url("intake"), *ACTIVE_MEMBERS[member_no], member_no,
                                 "phone", shots="consultant")
    receipt_no = receipt["receipt_no"]
    page = operator

    # the first call, booked by the scheduler and issued by the notifier, on the tab its day puts it
    tab, row = listed(page, console, receipt_no, "電話連絡", "the first call task")
    (first,) = open_tasks(page, console, receipt_no)
    assert (first["kind"], first["attempt"]) == ("call", 1)
    booked = booking_of(desk, first["consultation_id"])
    assert (booked["attempt"], booked["status"]) == (1, "live")
    assert datetime.fromisoformat(first["due_starts_at"]) == booked["starts_at"]
    assert tab == tab_of(booked["starts_at"])
    expect(row.locator("td.due")).to_contain_text(queue_label(booked["starts_at"], booked["ends_at"]))
    shot(page, "queue")

    # claimed from the queue, it opens; nobody answers: 不在 with a note
    submit(page, row.get_by_role("button", name=re.compile("^担当する")))
    expect(page).to_have_url(f"{console}/tasks/{first['task_id']}")
    expect(page.locator("#task-status")).to_contain_text("あなたが担当しています")
    assert due_on_task_page(page) == page_label(booked["starts_at"], booked["ends_at"])
    page.check("#outcome-no_answer")
    page.fill("#note", "留守番電話。時間をおいてかけ直す。")
    shot(page, "call")
    submit(page, page.get_by_role("button", name="結果を記録してタスクを完了する"))
    expect(page.locator("#call-outcome")).to_contain_text("出なかった")
    expect(page.locator("#notes")).to_contain_text("留守番電話。時間をおいてかけ直す。")
    shot(page, "call_done")

    # the scheduler books attempt 2 later than the first; the notifier issues its call task
    tab, row = listed(page, console, receipt_no, "電話連絡（2回目）", "the second call task")
    (second,) = open_tasks(page, console, receipt_no)
    again = booking_of(desk, first["consultation_id"])
    assert (second["kind"], second["attempt"], again["attempt"], again["status"]) == ("call", 2, 2, "live")
    assert second["booking_id"] == first["booking_id"] == str(again["id"])
    assert again["starts_at"] > booked["starts_at"]
    assert datetime.fromisoformat(second["due_starts_at"]) == again["starts_at"]
    assert datetime.fromisoformat(second["due_ends_at"]) == again["ends_at"]
    assert tab == tab_of(again["starts_at"])
    expect(row.locator("td.due")).to_contain_text(queue_label(again["starts_at"], again["ends_at"]))
    shot(page, "next_attempt")
    row.get_by_role("link", name=re.compile("のタスクを開く$")).click()
    expect(page).to_have_url(f"{console}/tasks/{second['task_id']}")
    assert due_on_task_page(page) == page_label(again["starts_at"], again["ends_at"])
    expect(page.locator("#history-outcomes")).to_contain_text("1回目：出なかった")


def test_a_review_confirmed_by_the_operator_moves_the_consultation_on(processes, desk, browser, operator):
    console = processes.url("console")
    # member number M0001 (見本 太郎) under another name: eligibility asks for a review (name_mismatch)
    receipt = consultant_submits(browser, processes.url("intake"), "誤記 太郎", "ごき たろう", "M0001", "email")
    receipt_no = receipt["receipt_no"]
    page = operator

    _, row = listed(page, console, receipt_no, "会員確認", "the review task")
    expect(row.locator("td.kind")).to_contain_text("会員番号とお名前が名簿と合わない")
    (review,) = open_tasks(page, console, receipt_no)
    row.get_by_role("link", name=re.compile("のタスクを開く$")).click()
    expect(page).to_have_url(f"{console}/tasks/{review['task_id']}")
    # the reason travels on its own event (eligibility.review_requested.v1): it may come after the task
    deadline = time.monotonic() + TASK_WAIT_S
    while "理由はまだ届いていません" in page.inner_text("#review-reason"):
        assert time.monotonic() < deadline, "the review's reason never reached the console"
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator("#review-reason")).to_have_text(
        "入力された会員番号は名簿にありますが、お名前・ふりがなが名簿と一致しません。")
    candidate = page.locator("#candidates tbody tr", has_text="M0001")
    expect(candidate).to_contain_text("見本 太郎")
    expect(candidate).to_contain_text("入力された会員番号の会員（お名前が異なる）")

    submit(page, page.get_by_role("button", name="このタスクを担当する"))
    page.check("#decision-checked_by_phone")
    page.fill("#note", "電話でご本人に会員番号とお名前を確認した。")
    shot(page, "review")
    submit(page, page.get_by_role("button", name="判断を記録してタスクを完了する"))
    expect(page.locator("#review-decision")).to_contain_text("対象として確認する")
    expect(page.locator("#review-decision")).to_contain_text("電話で確認した")
    shot(page, "review_done")

    # eligibility applies the decision and confirms; the scheduler books a reply day and the
    # notifier gives operators the e-mail task
    _, row = listed(page, console, receipt_no, "メール連絡", "the e-mail task after the review")
    (task,) = open_tasks(page, console, receipt_no)
    assert task["kind"] == "email"
    # its page's history holds the acknowledgement the notifier sent (notification.email_sent.v1)
    row.get_by_role("link", name=re.compile("のタスクを開く$")).click()
    deadline = time.monotonic() + TASK_WAIT_S
    while page.locator("#history-emails").count() == 0:
        assert time.monotonic() < deadline, "the acknowledgement never reached the consultation's history"
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator("#history-emails")).to_contain_text("受付のお知らせ")
    (decision,) = query(desk, "SELECT decision, reason, applied FROM eligibility.decisions WHERE consultation_id = $1",
                        uuid.UUID(review["consultation_id"]))
    assert tuple(decision) == ("confirm", "checked_by_phone", True)
    shot(page, "review_next")

    # the consultant's status look-up, kept current by intake from the same events, says so too
    def status():
        return httpx.get(f"{processes.url('intake')}/api/v1/consultations/{receipt_no}",
                         headers={"X-Status-Token": receipt["status_token"]}, timeout=10).json()["status"]
    deadline = time.monotonic() + TASK_WAIT_S
    while status() in ("received", "under_review"):
        assert time.monotonic() < deadline, "intake's status never left the review"
        time.sleep(0.5)
    assert status() in ("eligible", "scheduled")


def test_a_consultation_taken_on_the_phone_gets_intake_s_receipt_number(processes, desk, operator):
    console, page = processes.url("console"), operator
    page.get_by_role("link", name="電話で受けた相談の入力").click()
    expect(page.locator("h1")).to_have_text("電話で受けた相談の入力")
    submission_id = uuid.UUID(page.locator("input[name=submission_id]").get_attribute("value"))

    # the caller dictates; the operator types
    name, kana = ACTIVE_MEMBERS["M0003"]
    page.fill("#f-name", name)
    page.fill("#f-name_kana", kana)
    page.check("#f-role-member")
    page.fill("#f-member_no", "M0003")
    page.check("#f-contact_method-phone")
    page.fill("#f-phone", "06-1234-5678")
    page.check("#f-preferred_time-afternoon")
    page.check("#f-category-in_person")
    page.fill("#f-summary", "待合室で他の患者に大声で怒鳴り、職員を威圧する方がいます。")
    page.check("#f-consent")
    shot(page, "phone")
    submit(page, page.get_by_role("button", name="受付システムに送信する"))
    expect(page).to_have_url(f"{console}/phone/{submission_id}")

    # intake's answer travels back as an event; the waiting page refreshes itself (a meta refresh)
    expect(page.locator("#receipt-no")).to_be_visible(timeout=TASK_WAIT_S * 1000)
    receipt_no = page.inner_text("#receipt-no").strip()
    code = page.inner_text("#status-code").strip()
    assert re.fullmatch(r"PH-\d{6}-\d{5,}", receipt_no), receipt_no
    shot(page, "phone_accepted")

    # the number and the code read out are intake's: the consultant's status look-up finds it
    (recorded,) = query(desk, "SELECT receipt_no, channel, consultant_name, member_no FROM intake.consultations "
                              "WHERE submission_id = $1", submission_id)
    assert tuple(recorded) == (receipt_no, "phone", name, "M0003")
    status = httpx.get(f"{processes.url('intake')}/api/v1/consultations/{receipt_no}",
                       headers={"X-Status-Token": code}, timeout=10)
    assert status.status_code == 200 and status.json()["receipt_no"] == receipt_no, status.text

    # read out: the code is gone from the console; the call task follows like any other
    submit(page, page.get_by_role("button", name="読み上げたのでコードを消す"))
    expect(page.locator("#code-gone")).to_be_visible()
    expect(page.locator("#receipt-no")).to_have_text(receipt_no)
    listed(page, console, receipt_no, "電話連絡", "the call task of the phone consultation")
