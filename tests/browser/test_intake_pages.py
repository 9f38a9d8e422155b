"""The consultant's pages in headless Chromium (Debian's, driven by Playwright), served by a real
uvicorn on 127.0.0.1 over the test database: the form filled with the keyboard alone, its errors,
the receipt and the status page, at a desktop's and a phone's width. Screenshots are kept in
var/screenshots/ for a person to look at."""
import asyncio
import re
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect
from sqlalchemy import text

from services.intake import main as intake_main, protection, unavailable, web
from shared.db import make_engine, make_sessions
from tests.browser.support import SHOTS, serving

DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 375, "height": 740}


@pytest.fixture(scope="module")
def server(desk):
    """Intake's pages and API as main.create_app composes them (without the broker: the outbox
    keeps what it would publish), on a free port, stopped at the end."""
    async def empty():
        engine = make_engine(desk)
        async with engine.begin() as conn:
            await conn.execute(text(
                "truncate intake.consultations, intake.outbox, intake.inbox, intake.submission_keys"))
        await engine.dispose()
    asyncio.run(empty())

    engine = make_engine(desk)  # connects inside the server's own event loop

    @asynccontextmanager
    async def lifespan(_):
        yield
        await engine.dispose()
    app = FastAPI(lifespan=lifespan)
    app.include_router(intake_main.routes(make_sessions(engine), desk))
    unavailable.install(app, web.templates)
    protection.install(app, desk)
    with serving(app, "intake") as address:
        yield address


def shot(page: Page, name: str) -> None:
    page.screenshot(path=SHOTS / name, full_page=True)


def focused(page: Page) -> str:
    return page.evaluate("document.activeElement && (document.activeElement.id || document.activeElement.tagName)")


def tab_to(page: Page, element_id: str, most: int = 80) -> None:
    """Press Tab until the element has the focus: it is reachable by the keyboard, in page order."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if focused(page) == element_id:
            return
    raise AssertionError(f"#{element_id} was never reached with Tab (stopped at {focused(page)})")


def type_into(page: Page, element_id: str, typed: str) -> None:
    tab_to(page, element_id)
    page.keyboard.type(typed)


def outline_of(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.activeElement).outlineStyle")


def test_the_form_errors_receipt_and_status_with_the_keyboard(server, browser):
    page = browser.new_page(viewport=PHONE, locale="ja-JP")

    # on a phone: nothing fits wider than the screen; sent empty, every mistake comes at once
    page.goto(server + "/")
    expect(page.locator("h1")).to_have_text("ご相談の受付")
    shot(page, "form_375.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    tab_to(page, "f-urgent")
    assert outline_of(page) != "none", "the focus is visible"
    page.locator("button[type=submit]").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # autofocus, not a script: the summary is focused once the page is shown
    page.wait_for_function("document.activeElement && document.activeElement.id === 'error-summary'", timeout=3000)
    links = page.locator("#error-summary li a")
    assert links.count() >= 6
    shot(page, "form_errors_375.png")
    page.keyboard.press("Tab")  # the first link of the summary, then to its field
    page.keyboard.press("Enter")
    assert focused(page) == "f-name"
    assert page.get_attribute("#f-name", "aria-invalid") == "true"

    # at a desktop's width, with the keyboard only
    page.set_viewport_size(DESKTOP)
    page.goto(server + "/")
    shot(page, "form_1280.png")
    tab_to(page, "f-urgent")
    page.keyboard.press("Space")
    type_into(page, "f-name", "見本 花子")
    type_into(page, "f-name_kana", "みほん はなこ")
    tab_to(page, "f-role")  # the first of the radios: Space picks it
    page.keyboard.press("Space")
    type_into(page, "f-member_no", "Ｍ０００１")
    tab_to(page, "f-contact_method")
    page.keyboard.press("Space")  # 電話
    type_into(page, "f-phone", "03-1234-5678")
    tab_to(page, "f-preferred_time-any")  # いつでも is chosen already: the arrow picks 午前
    page.keyboard.press("ArrowDown")
    assert page.is_checked("#f-preferred_time")
    tab_to(page, "f-category")
    page.keyboard.press("ArrowDown")  # online posts
    type_into(page, "f-summary", "口コミサイトに、事実と異なる投稿を繰り返しされています。")
    type_into(page, "f-urls", "https://www.google.com/maps/contrib/1/reviews")
    page.keyboard.press("Enter")
    page.keyboard.type("https://x.com/someone/status/2")
    tab_to(page, "f-consent")
    page.keyboard.press("Space")
    assert page.is_checked("#f-urgent") and page.is_checked("#f-consent") and page.is_checked("#f-category-online")
    page.keyboard.press("Tab")
    assert focused(page) == "BUTTON"
    with page.expect_navigation():
        page.keyboard.press("Enter")

    expect(page.locator("h1")).to_have_text("ご相談を受け付けました")
    receipt_no = page.inner_text("#receipt-no")
    status_code = page.inner_text("#status-token")
    assert re.fullmatch(r"PH-\d{6}-\d+", receipt_no)
    assert page.locator("main a[href='tel:110']").is_visible() and page.locator("main a[href='tel:119']").is_visible()
    assert "お電話" in page.inner_text("main")
    shot(page, "receipt_1280.png")
    page.set_viewport_size(PHONE)
    shot(page, "receipt_375.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # the status page finds it, typed as a person reads it from the receipt
    page.goto(server + "/status")
    shot(page, "status_form_375.png")
    for name, typed in (("receipt_no", receipt_no), ("status_token", status_code)):
        page.locator(f"input[name={name}]").focus()
        page.keyboard.type(typed)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert receipt_no in page.inner_text("main") and "受付済み" in page.inner_text("main")
    shot(page, "status_375.png")
    page.close()


def test_the_privacy_notice_reads_on_a_phone(server, browser):
    page = browser.new_page(viewport=PHONE, locale="ja-JP")
    page.goto(server + "/privacy")
    expect(page.locator("h1")).to_have_text("個人情報の取り扱い")
    assert web.RETENTION in page.inner_text("main")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "privacy_375.png")
    page.close()
