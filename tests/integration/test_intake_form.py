"""The web form as a browser without JavaScript uses it, over HTTP on the real database: the page
gives a token and a cookie, the post comes back as a receipt or as every mistake at once, a post
from anywhere else is refused and records nothing."""
import re
from html import unescape

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from services.intake import main as intake_main, protection, unavailable, web
from services.intake.orm import consultations
from shared.db import make_engine, make_sessions

FORM = {"name": "見本 花子", "name_kana": "みほん はなこ", "role": "member", "member_no": "M0001",
        "contact_method": "phone", "phone": "03-1234-5678", "preferred_time": "morning", "category": "both",
        "summary": "待合室で大声で威圧され、その後、口コミサイトに事実と異なる投稿をされました。",
        "urls": "https://www.google.com/maps/contrib/1/reviews\r\n\r\nhttps://x.com/someone/status/2",
        "consent": "yes"}


@pytest.fixture
async def intake(desk):
    """Intake's routes with its error pages and protections, as main.create_app composes them."""
    engine = make_engine(desk)
    sessions = make_sessions(engine)
    async with engine.begin() as conn:
        await conn.execute(text("truncate intake.consultations, intake.outbox, intake.inbox, intake.submission_keys"))
    app = FastAPI()
    app.include_router(intake_main.routes(sessions, desk))
    unavailable.install(app, web.templates)
    protection.install(app, desk)
    clients = []

    def browser() -> httpx.AsyncClient:  # each with its own cookie jar
        clients.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake"))
        return clients[-1]
    yield browser, sessions
    for client in clients:
        await client.aclose()
    await engine.dispose()


def hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page.text)
    assert found, f"the page has no hidden {name}"
    return found[1]


async def opened(client: httpx.AsyncClient, path: str = "/") -> dict:
    """The hidden fields a browser sends back with the form it was given."""
    page = await client.get(path)
    assert page.status_code == 200
    fields = {"csrf_token": hidden(page, "csrf_token")}
    if path == "/":
        fields["submission_id"] = hidden(page, "submission_id")
    return fields


async def recorded(sessions) -> int:
    async with sessions() as s:
        return await s.scalar(select(func.count()).select_from(consultations))


def between(page: str, start: str, end: str) -> str:
    return page.split(start, 1)[1].split(end, 1)[0]


async def test_a_consultation_goes_through_the_form_and_its_status_is_found(intake):
    browser, sessions = intake
    client = browser()
    form_page = await client.get("/")
    assert form_page.cookies.get(web.FormGuard.COOKIE), "the page sets the cookie its token is bound to"
    assert "samesite=lax" in form_page.headers["set-cookie"].lower()
    assert "httponly" in form_page.headers["set-cookie"].lower()
    receipt = await client.post("/consultations", data={**FORM, **await opened(client)})
    assert receipt.status_code == 200 and "ご相談を受け付けました" in receipt.text
    receipt_no = between(receipt.text, 'id="receipt-no">', "<")
    status_token = unescape(between(receipt.text, 'id="status-token">', "<"))
    assert "午前（9:00〜12:00）" in receipt.text and "会員名簿と照合" in receipt.text
    assert "110" not in between(receipt.text, "<main", "</main>"), "no emergency box unless asked for"
    async with sessions() as s:
        row = (await s.execute(select(consultations).where(consultations.c.receipt_no == receipt_no))).one()
    assert row.urls == ["https://www.google.com/maps/contrib/1/reviews", "https://x.com/someone/status/2"]

    status_form = await client.get("/status")
    if 'name="csrf_token"' not in status_form.text:
        pytest.fail('status.html posts without the token: its <form> needs {% include "csrf_field.html" %}')
    found = await client.post("/status", data={"receipt_no": receipt_no, "status_token": status_token,
                                               "csrf_token": hidden(status_form, "csrf_token")})
    assert found.status_code == 200 and receipt_no in found.text and "受付済み" in found.text


async def test_a_reloaded_receipt_page_records_nothing_twice(intake):
    browser, sessions = intake
    client = browser()
    sent = {**FORM, **await opened(client)}
    first, again = [await client.post("/consultations", data=sent) for _ in range(2)]
    assert between(first.text, 'id="receipt-no">', "<") == between(again.text, 'id="receipt-no">', "<")
    assert 'id="repeated"' in again.text and await recorded(sessions) == 1
    # back, changed, sent with the same page's id: another consultation
    changed = await client.post("/consultations", data={**sent, "summary": "別の件です。"})
    assert changed.status_code == 200 and await recorded(sessions) == 2


async def test_a_post_without_a_valid_token_is_refused_and_records_nothing(intake):
    browser, sessions = intake
    client, other = browser(), browser()
    mine, theirs = await opened(client), await opened(other)
    signed = mine["csrf_token"]
    tampered = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")
    for token in (None, "", "x" * 40, tampered, theirs["csrf_token"]):
        sent = {**FORM, **({"csrf_token": token} if token is not None else {})}
        page = await client.post("/consultations", data=sent)
        assert page.status_code == 403, token
        assert "送信を受け付けられませんでした" in page.text and "まだ記録されていません" in page.text
        assert FORM["summary"] not in page.text, "what another site sent is not shown as the person's own"
        assert 'name="csrf_token"' in page.text, "a fresh form to send from"
    no_cookie = browser()
    assert (await no_cookie.post("/consultations", data={**FORM, **mine})).status_code == 403
    status = await client.post("/status", data={"receipt_no": "PH-261124-00000", "status_token": "x"})
    assert status.status_code == 403 and "送信を受け付けられませんでした" in status.text
    assert await recorded(sessions) == 0


async def test_a_token_only_too_old_brings_the_form_back_as_typed(intake, monkeypatch):
    browser, sessions = intake
    client = browser()
    sent = {**FORM, **await opened(client)}
    monkeypatch.setattr(web.FormGuard, "MAX_AGE_S", -1)
    page = await client.post("/consultations", data=sent)
    assert page.status_code == 403 and "入力いただいた内容はこの画面に残っています" in page.text
    assert FORM["summary"] in page.text and await recorded(sessions) == 0
    monkeypatch.undo()
    again = await client.post("/consultations", data={**sent, "csrf_token": hidden(page, "csrf_token")})
    assert again.status_code == 200


async def test_every_mistake_is_listed_at_once_and_linked_to_its_field(intake):
    browser, sessions = intake
    client = browser()
    mistakes = {**FORM, "name_kana": "Hanako", "member_no": "", "phone": "", "consent": "",
                **await opened(client)}
    page = await client.post("/consultations", data=mistakes)
    assert page.status_code == 422
    opening = re.search(r'<div [^>]*id="error-summary"[^>]*>', page.text)[0]
    assert all(a in opening for a in ('role="alert"', 'tabindex="-1"', "autofocus")), "focused without script"
    summary = between(page.text, 'id="error-summary"', "</div>")
    links = re.findall(r'<li><a href="#f-([a-z_]+)">', summary)
    assert links == ["name_kana", "member_no", "phone", "consent"]
    for name in links:
        control = re.search(rf'<input [^>]*id="f-{name}"[^>]*>', page.text)[0]
        assert 'aria-invalid="true"' in control and f"f-{name}-error" in control
        assert f'id="f-{name}-error"' in page.text
    assert 'value="Hanako"' in page.text and FORM["summary"] in page.text, "what was typed is kept"
    assert "<title>入力内容をご確認ください" in page.text
    assert await recorded(sessions) == 0


async def test_required_fields_are_marked_and_the_role_has_no_default(intake):
    browser, _ = intake
    page = (await browser().get("/")).text
    for name in ("name", "name_kana", "summary", "consent"):
        control = re.search(rf'<(?:input|textarea) [^>]*id="f-{name}"[^>]*>', page)[0]
        assert "required" in control and 'aria-required="true"' in control
    roles = re.findall(r'<input type="radio" [^>]*name="role"[^>]*>', page)
    assert len(roles) == 3 and not any("checked" in r for r in roles)
    assert "勤務先の開設者または管理者が医師会の会員であること" in page
    assert "110" in page and "119" in page and 'name="urgent"' in page
    assert 'href="/privacy"' in page
    privacy = await browser().get("/privacy")
    assert privacy.status_code == 200 and web.RETENTION in privacy.text and "相談窓口の相談員だけ" in privacy.text


async def test_a_file_where_text_belongs_is_a_mistake_not_a_failure(intake):
    browser, sessions = intake
    client = browser()
    fields = {k: v for k, v in {**FORM, **await opened(client)}.items() if k not in ("name", "urls")}
    page = await client.post("/consultations", data=fields,
                             files={"name": ("name.txt", b"\x00\x01", "text/plain"),
                                    "urls": ("urls.txt", b"https://x.com/a", "text/plain")})
    assert page.status_code == 422
    assert "文字以外のもの（ファイルなど）は送れません" in between(page.text, 'id="f-name-error"', "</p>")
    assert 'id="f-urls-error"' in page.text
    assert await recorded(sessions) == 0


async def test_a_consultant_in_danger_sees_the_emergency_numbers_on_the_receipt(intake):
    browser, _ = intake
    client = browser()
    page = await client.post("/consultations", data={**FORM, "urgent": "yes", **await opened(client)})
    assert page.status_code == 200
    main = between(page.text, "<main", "</main>")
    assert 'href="tel:110"' in main and 'href="tel:119"' in main and "急ぎのご相談として扱います" in main


async def test_a_control_character_is_a_mistake_for_the_api_and_the_form_alike(intake):
    """A NUL reached the database before, which refused it: a 500 instead of a reason."""
    browser, sessions = intake
    client = browser()
    api = await client.post("/api/v1/consultations", json={
        "consultant": {"name": "見本\u0000花子", "name_kana": "みほん はなこ", "role": "member", "member_no": "M0001"},
        "contact": {"method": "email", "email": "hanako@example.com"}, "category": "in_person",
        "summary": "大声で\u0000威圧されました。", "consent": True})
    assert api.status_code == 422
    assert {(e["field"], e["code"]) for e in api.json()["errors"]} == {
        ("consultant.name", "control_character"), ("summary", "control_character")}
    page = await client.post("/consultations", data={**FORM, "name": "見本\x00花子", **await opened(client)})
    assert page.status_code == 422 and 'id="f-name-error"' in page.text
    assert await recorded(sessions) == 0
