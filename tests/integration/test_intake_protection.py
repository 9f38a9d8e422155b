"""Intake's protections over HTTP on the real database (services/intake/protection.py): media
types, bodies refused while read, security headers, limits per address, Japanese for every error,
and status codes a person can type."""
import json
import logging
import re
from datetime import datetime, timezone

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import func, select, text

from services.intake import main as intake_main, protection, receipts
from services.intake.orm import consultations
from shared.db import make_engine, make_sessions
from tests.integration.test_intake import SUBMISSION

FORM = {"name": "見本 花子", "name_kana": "みほん はなこ", "role": "member", "member_no": "M0001",
        "contact_method": "phone", "phone": "03-1234-5678", "category": "in_person",
        "summary": "待合室で大声で威圧されました。", "consent": "yes"}
JSON = {"content-type": "application/json"}
UNKNOWN = receipts.receipt_no(999_999, datetime(2026, 11, 24, tzinfo=timezone.utc))  # well formed, never issued


@pytest.fixture
async def build(desk):
    """Builds intake's routes with its protections, under the given settings; one client per
    address."""
    engine = make_engine(desk)
    sessions = make_sessions(engine)
    async with engine.begin() as conn:
        await conn.execute(text("truncate intake.consultations, intake.outbox, intake.inbox"))
    clients = []

    def app_with(**settings) -> tuple[FastAPI, callable]:
        app = FastAPI()
        app.include_router(intake_main.routes(sessions, desk))
        protection.install(app, desk.model_copy(update=settings))

        def client(address: str = "192.0.2.1") -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 50000))
            clients.append(httpx.AsyncClient(transport=transport, base_url="http://intake"))
            return clients[-1]
        return app, client

    yield app_with, sessions
    for client in clients:
        await client.aclose()
    await engine.dispose()


@pytest.fixture
async def intake(build):
    app_with, sessions = build
    return app_with()[1](), sessions


async def token(client: httpx.AsyncClient) -> dict:
    """The token against cross-site posts that a browser gets with the form (and its cookie),
    good for any of intake's forms."""
    found = re.search(r'name="csrf_token" value="([^"]*)"', (await client.get("/")).text)
    return {"csrf_token": found[1]} if found else {}


async def recorded(sessions) -> int:
    async with sessions() as s:
        return await s.scalar(select(func.count()).select_from(consultations))


async def test_the_api_takes_json_only_and_the_pages_take_forms_only(intake):
    client, sessions = intake
    api = "/api/v1/consultations"
    as_text = await client.post(api, content=json.dumps(SUBMISSION), headers={"content-type": "text/plain"})
    assert as_text.status_code == 415 and as_text.json()["code"] == "unsupported_media_type"
    assert "application/json" in as_text.json()["detail"] and "してください" in as_text.json()["detail"]
    latin1 = await client.post(api, json=SUBMISSION, headers={"content-type": "application/json; charset=latin-1"})
    form_as_json = await client.post("/consultations", json=FORM)
    status_as_text = await client.post("/status", content=b"receipt_no=x", headers={"content-type": "text/plain"})
    assert latin1.status_code == form_as_json.status_code == status_as_text.status_code == 415
    assert "この形式の送信は受け付けていません" in form_as_json.text
    assert await recorded(sessions) == 0
    ok = await client.post(api, json=SUBMISSION, headers={"content-type": "application/json; charset=UTF-8"})
    form = {**FORM, **await token(client)}
    assert ok.status_code == 202 and (await client.post("/consultations", data=form)).status_code == 200
    assert (await client.post("/consultations", files={"unused": ("a.txt", b"x")}, data=form)).status_code == 200


async def test_a_declared_length_over_the_limit_is_refused_before_reading(intake):
    client, sessions = intake
    sent = []

    async def body():
        for _ in range(160):
            sent.append(1)
            yield b" " * 65536

    declared = {**JSON, "content-length": str(160 * 65536)}
    huge = await client.post("/api/v1/consultations", content=body(), headers=declared)
    assert huge.status_code == 413 and sent == []
    assert huge.json() == {"code": "too_large", "detail": "送信内容が大きすぎます（上限 64KB）"}
    page = await client.post("/consultations", data={**FORM, "summary": "あ" * 50_000})
    assert page.status_code == 413 and "送信内容が大きすぎます（上限 128KB）" in page.text
    assert await recorded(sessions) == 0


async def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(intake):
    client, sessions = intake
    sent = []

    async def ten_megabytes():  # no Content-Length: sent chunked
        for _ in range(160):
            sent.append(1)
            yield b" " * 65536

    api = await client.post("/api/v1/consultations", content=ten_megabytes(), headers=JSON)
    assert api.status_code == 413 and api.json()["code"] == "too_large"
    assert len(sent) <= 2  # the second chunk passes 64 KiB: nothing more is read
    sent.clear()
    form = await client.post("/consultations", content=ten_megabytes(),
                             headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 413 and "上限 128KB" in form.text and len(sent) <= 3
    assert await recorded(sessions) == 0


def assert_protected(response: httpx.Response, cache: str = "no-store") -> None:
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'none'", "frame-ancestors 'none'", "form-action 'self'",
                      "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == cache


async def test_every_answer_carries_the_security_headers(intake):
    client, _ = intake
    assert_protected(await client.get("/"), cache="no-cache")  # blank: Back keeps what was typed
    receipt_page = await client.post("/consultations", data={**FORM, **await token(client)})
    api_receipt = await client.post("/api/v1/consultations", json=SUBMISSION)
    receipt = api_receipt.json()
    status_api = await client.get(f"/api/v1/consultations/{receipt['receipt_no']}",
                                  headers={"X-Status-Token": receipt["status_token"]})
    status_page = await client.post("/status", data={"receipt_no": receipt["receipt_no"],
                                                     "status_token": receipt["status_token"], **await token(client)})
    assert (receipt_page.status_code, api_receipt.status_code, status_api.status_code, status_page.status_code) == (
        200, 202, 200, 200)
    for response in (receipt_page, api_receipt, status_api, status_page, await client.get("/status"),
                     await client.get("/nowhere"), await client.post("/consultations", data={"name": "x"})):
        assert_protected(response)


async def test_past_the_limit_an_address_is_refused_and_nothing_is_recorded(build, desk):
    app_with, sessions = build
    _, client = app_with(intake_rate_limit="3/minute", intake_status_rate_limit="2/minute")
    first, other = client("192.0.2.1"), client("198.51.100.7")
    for _ in range(3):
        assert (await first.post("/api/v1/consultations", json=SUBMISSION)).status_code == 202
    refused = await first.post("/api/v1/consultations", json=SUBMISSION)
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert 0 < int(refused.headers["retry-after"]) <= 60 and "記録されていません" in refused.json()["detail"]
    typed = {**FORM, **await token(first)}
    form = await first.post("/consultations", data=typed)
    assert form.status_code == 429 and int(form.headers["retry-after"]) > 0
    assert "記録されていません" in form.text and "1分ほど" in form.text and desk.desk_phone in form.text
    assert 'value="見本 花子"' in form.text and "待合室で大声で威圧されました。" in form.text  # nothing typed is lost
    assert typed.get("csrf_token", "") in form.text  # sent again later, it is still this browser's own post
    assert await recorded(sessions) == 3
    assert (await other.post("/consultations", data={**FORM, **await token(other)})).status_code == 200
    assert await recorded(sessions) == 4
    look_up = {"receipt_no": UNKNOWN, "status_token": "0000-0000-0000", **await token(first)}
    answers = [(await first.post("/status", data=look_up)).status_code for _ in range(3)]
    assert answers == [404, 404, 429]
    assert (await first.get("/api/v1/consultations/PH-261124-00000")).status_code == 429
    assert (await other.post("/status", data={**look_up, **await token(other)})).status_code == 404


async def test_the_limit_is_off_at_zero(build):
    app_with, _ = build
    client = app_with(intake_rate_limit="0")[1]()
    answers = {(await client.post("/api/v1/consultations", json=SUBMISSION)).status_code for _ in range(8)}
    assert answers == {202}


async def test_a_lone_surrogate_is_refused_in_japanese(intake):
    client, sessions = intake
    body = json.dumps(dict(SUBMISSION, summary="投稿\ud800です")).encode()
    response = await client.post("/api/v1/consultations", content=body, headers=JSON)
    assert response.status_code == 422 and await recorded(sessions) == 0
    assert all(not e["message"].isascii() for e in response.json()["errors"]), response.json()


async def test_bad_bodies_get_japanese_answers_and_never_a_5xx(intake):
    client, sessions = intake
    for body in (b"{not json", b"\xff\xfe\x00garbage", b'{"a":' * 1000 + b"1" + b"}" * 1000, b"[" * 5000 + b"]" * 5000):
        response = await client.post("/api/v1/consultations", content=body, headers=JSON)
        assert response.status_code == 422 and not response.json()["detail"].isascii(), body[:20]
        assert response.json()["errors"][0]["code"] == "invalid_json"
    no_boundary = await client.post("/status", content=b"x", headers={"content-type": "multipart/form-data"})
    assert no_boundary.status_code == 400 and "送信内容の形式が正しくない" in no_boundary.text
    assert await recorded(sessions) == 0


async def test_unknown_pages_and_methods_are_answered_in_japanese(intake):
    client, _ = intake
    page = await client.get("/nowhere")
    assert page.status_code == 404 and "ページが見つかりません" in page.text and 'lang="ja"' in page.text
    api = await client.get("/api/v2/anything")
    assert api.status_code == 404 and api.json()["code"] == "not_found" and not api.json()["detail"].isascii()
    wrong_method = await client.delete("/api/v1/consultations")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "POST"


async def test_a_failure_is_answered_in_japanese_and_logged_without_what_was_sent(build, caplog):
    app_with, _ = build
    app, client_at = app_with()

    @app.post("/api/v1/failing")
    async def failing(request: Request):
        raise ValueError((await request.json())["name"])  # an error's text can carry what was sent

    @app.get("/failing")
    async def failing_page(request: Request):
        raise KeyError(request.query_params["email"])

    client = client_at()
    with caplog.at_level(logging.ERROR, logger="payhara.intake"):
        api = await client.post("/api/v1/failing", json={"name": "見本 花子"})
        page = await client.get("/failing", params={"email": "hanako@example.com"})
    assert api.status_code == page.status_code == 500
    assert api.json()["code"] == "internal_error" and "窓口までお電話" in api.json()["detail"]
    assert "処理できませんでした" in page.text and "03-0000-0000" in page.text
    assert_protected(api)
    assert_protected(page)
    assert "ValueError" in caplog.text and "見本" not in caplog.text and "hanako" not in caplog.text


async def test_a_status_code_is_taken_as_typed_and_a_wrong_one_looks_like_no_receipt(intake):
    client, _ = intake
    receipt = (await client.post("/api/v1/consultations", json=SUBMISSION)).json()
    code = receipt["status_token"]
    assert len(code) == 14 and code.count("-") == 2
    typed = "".join(chr(ord(c) + 0xFEE0) for c in code.replace("-", "").lower())  # full width, small, no hyphens
    csrf = await token(client)
    found = await client.post("/status", data={"receipt_no": receipt["receipt_no"], "status_token": typed, **csrf})
    assert found.status_code == 200 and "受付済み" in found.text
    wrong_code = code[:-1] + ("X" if code[-1] != "X" else "Y")
    url = f"/api/v1/consultations/{receipt['receipt_no']}"
    wrong = await client.get(url, headers={"X-Status-Token": wrong_code})
    unknown = await client.get("/api/v1/consultations/PH-261124-00000", headers={"X-Status-Token": code})
    assert wrong.status_code == unknown.status_code == 404 and wrong.json() == unknown.json()
    pages = [await client.post("/status", data={"receipt_no": number, "status_token": code_typed, **csrf})
             for number, code_typed in ((receipt["receipt_no"], wrong_code), (UNKNOWN, code))]
    assert [p.status_code for p in pages] == [404, 404] and pages[0].text == pages[1].text
