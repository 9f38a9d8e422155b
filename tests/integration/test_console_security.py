"""The console's accounts and security on real Postgres: hashes renewed at log-in, sessions
rotated, expired and ended, CSRF, lock-out per login and per address (on an injected clock),
no route without a session, control characters refused, and `payhara operators add`."""
import asyncio
import logging
import os
import re
import subprocess
import sys

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select, update

from services.console import web
from services.console.accounts import Operator, add_dev_operator, add_operator
from services.console.orm import operator_sessions, operators
from services.console.sessions import SESSION_COOKIE, require_supervisor
from shared.db import make_engine, make_sessions
from tests.console_support import Clock, browser, csrf_token

PASSWORD = "correct horse battery"
SCRYPT_HASH = "scrypt$16384$8$1$KaIT+YQ1ttTWGas8+hyElA==$VGpiqak3r1f9mzUQT3+ktsPVQ+5sRG+lR7AUdcEeVVM="
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
async def db(desk):
    engine = make_engine(desk, pool_size=4)
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
async def operator(db) -> Operator:
    return await add_operator(db, "tanaka", "田中 一郎", PASSWORD)


@pytest.fixture(scope="module")
async def supervisor(db) -> Operator:
    return await add_operator(db, "kimura", "木村 主任", PASSWORD, role="supervisor")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(desk, db, clock) -> FastAPI:
    app = FastAPI()
    web.install(app, db, desk, clock=clock)

    @app.get("/supervisor-only")  # how a later screen asks for a role
    async def supervisor_only(supervisor: Operator = Depends(require_supervisor)) -> dict:
        return {"login": supervisor.login}

    return app


async def log_in(client: httpx.AsyncClient, login: str = "tanaka", password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/login")
    token = csrf_token(form) if form.status_code == 200 else ""
    return await client.post("/login", data={"login": login, "password": password, "csrf_token": token})


async def api_log_in(client: httpx.AsyncClient, login: str = "tanaka", password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/session", json={"login": login, "password": password})


async def session_rows(db, app: FastAPI, token: str) -> int:
    key_hash = app.state.console_sessions._key_hash(token)
    async with db() as conn:
        return await conn.scalar(select(func.count()).select_from(operator_sessions)
                                 .where(operator_sessions.c.key_hash == key_hash))


# --- hashes -------------------------------------------------------------------------------

async def test_an_old_scrypt_hash_logs_in_and_is_renewed_to_argon2id(app, db):
    await add_operator(db, "yamamoto", "山本", "another password")
    async with db.begin() as conn:
        await conn.execute(update(operators).where(operators.c.login == "yamamoto").values(password_hash=SCRYPT_HASH))
    async with browser(app) as client:
        assert (await log_in(client, "yamamoto", "correct horse batterx")).status_code == 401
        async with db() as conn:  # a wrong password renews nothing
            stored = await conn.scalar(select(operators.c.password_hash).where(operators.c.login == "yamamoto"))
        assert stored == SCRYPT_HASH
        assert (await log_in(client, "yamamoto", PASSWORD)).status_code == 303
    async with db() as conn:
        renewed = await conn.scalar(select(operators.c.password_hash).where(operators.c.login == "yamamoto"))
    assert renewed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    async with browser(app) as client:
        assert (await log_in(client, "yamamoto", PASSWORD)).status_code == 303


# --- sessions -----------------------------------------------------------------------------

async def test_log_in_rotates_the_session_id(app, db, operator):
    async with browser(app) as client:
        form = await client.get("/login")
        before = client.cookies[SESSION_COOKIE]  # the log-in form's session
        logged_in = await client.post("/login", data={"login": "tanaka", "password": PASSWORD,
                                                      "csrf_token": csrf_token(form)})
        after = client.cookies[SESSION_COOKIE]
        assert logged_in.status_code == 303 and after != before
        assert await session_rows(db, app, before) == 0 and await session_rows(db, app, after) == 1
        page = await client.get("/")
        assert page.status_code == 200 and csrf_token(page) != csrf_token(form)
        # logging in again on a logged-in browser (with its token, as for any write) rotates again
        assert (await api_log_in(client)).status_code == 403
        again = await client.post("/api/v1/session", json={"login": "tanaka", "password": PASSWORD},
                                  headers={"X-CSRF-Token": csrf_token(page)})
        assert again.status_code == 200 and client.cookies[SESSION_COOKIE] not in (before, after)
        assert await session_rows(db, app, after) == 0
    for old in (before, after):
        async with browser(app) as replay:
            replay.cookies.set(SESSION_COOKIE, old, domain="console.test")
            assert (await replay.get("/")).status_code == 303


async def test_a_planted_session_id_is_never_the_one_logged_in(app, operator):
    async with browser(app) as client:
        client.cookies.set(SESSION_COOKIE, "chosen-by-an-attacker", domain="console.test")
        assert (await log_in(client)).status_code == 303
        assert client.cookies[SESSION_COOKIE] != "chosen-by-an-attacker"


async def test_an_idle_session_expires(app, clock, operator):
    async with browser(app) as client:
        await log_in(client)
        clock.advance(minutes=29)
        assert (await client.get("/")).status_code == 200
        clock.advance(minutes=29)  # 29 minutes after the last use: still alive
        assert (await client.get("/api/v1/tasks")).status_code == 200
        clock.advance(minutes=31)
        refused = await client.get("/api/v1/tasks")
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
        assert (await client.get("/")).status_code == 303


async def test_a_session_ends_after_its_lifetime_however_busy(app, clock, operator):
    async with browser(app) as client:
        await log_in(client)
        for _ in range(29):  # 9 h 40 min of use, every 20 minutes
            clock.advance(minutes=20)
            assert (await client.get("/api/v1/tasks")).status_code == 200
        clock.advance(minutes=21)  # 10 h 1 min after the log-in
        assert (await client.get("/api/v1/tasks")).status_code == 401


async def test_log_out_ends_the_session_on_the_server(app, db, operator):
    async with browser(app) as client:
        page = (await log_in(client), await client.get("/"))[1]
        token = client.cookies[SESSION_COOKIE]
        out = await client.post("/logout", data={"csrf_token": csrf_token(page)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert await session_rows(db, app, token) == 0
    async with browser(app) as replay:  # a copy of the cookie made before the log-out
        replay.cookies.set(SESSION_COOKIE, token, domain="console.test")
        assert (await replay.get("/")).status_code == 303

    async with browser(app) as client:
        answer = (await api_log_in(client)).json()
        assert answer["operator"] == {"id": operator.id, "login": "tanaka", "display_name": "田中 一郎",
                                      "role": "operator", "role_label": "オペレーター"}
        token = client.cookies[SESSION_COOKIE]
        out = await client.delete("/api/v1/session", headers={"X-CSRF-Token": answer["csrf_token"]})
        assert out.status_code == 204 and await session_rows(db, app, token) == 0
        client.cookies.set(SESSION_COOKIE, token, domain="console.test")
        assert (await client.get("/api/v1/tasks")).status_code == 401


async def test_a_new_password_ends_the_sessions_of_the_old_one(app, db):
    await add_operator(db, "inoue", "井上", PASSWORD)
    async with browser(app) as client:
        await log_in(client, "inoue")
        await add_operator(db, "inoue", "井上", "a brand new password")
        assert (await client.get("/")).status_code == 303


async def test_an_operator_s_sessions_can_be_revoked_at_once(app, operator):
    async with browser(app) as office, browser(app) as home:
        await log_in(office), await log_in(home)
        assert await app.state.console_sessions.end_all_of(operator.id) >= 2
        assert (await office.get("/")).status_code == 303 and (await home.get("/")).status_code == 303


async def test_cookies_are_secure_outside_dev_and_test(desk, db, operator):
    production = FastAPI()
    web.install(production, db, desk.model_copy(update={"env": "production"}))
    async with browser(production) as client:
        cookie = (await api_log_in(client)).headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie


async def test_expired_sessions_and_old_failures_are_purged(app, db, clock, operator):
    async with browser(app, "10.5.0.1") as client:
        await log_in(client, "purge-me", "a wrong guess!")
        await log_in(client)
        token = client.cookies[SESSION_COOKIE]
    logins = app.state.console_logins
    clock.advance(minutes=29)  # a failure may still count for 30 minutes (window and lock-out)
    await logins.sessions.purge(), await logins.lockout.purge()
    assert await session_rows(db, app, token) == 1
    clock.advance(minutes=2)
    assert await logins.sessions.purge() >= 1 and await session_rows(db, app, token) == 0
    assert await logins.lockout.purge() >= 1


# --- roles --------------------------------------------------------------------------------

async def test_a_supervisor_only_route_refuses_an_operator_in_japanese(app, operator, supervisor):
    async with browser(app) as client:
        await log_in(client, "tanaka")
        refused = await client.get("/supervisor-only")
        assert refused.status_code == 403 and "責任者の権限が必要です" in refused.text
    async with browser(app) as client:
        assert (await api_log_in(client, "kimura")).json()["operator"]["role"] == "supervisor"
        assert (await client.get("/supervisor-only")).json() == {"login": "kimura"}


async def test_the_dev_operator_is_a_supervisor_made_in_dev_mode_only(db):
    with pytest.raises(PermissionError):
        await add_dev_operator(db, "production")
    with pytest.raises(PermissionError):
        await add_dev_operator(db, "test")
    async with db() as conn:
        assert await conn.scalar(select(func.count()).select_from(operators).where(operators.c.login == "dev")) == 0
    dev = await add_dev_operator(db, "dev")
    assert (dev.login, dev.role) == ("dev", "supervisor")


# --- lock-out -----------------------------------------------------------------------------

async def test_five_failures_lock_the_login_for_fifteen_minutes(app, db, clock, caplog):
    await add_operator(db, "nakamura", "中村", PASSWORD)
    caplog.set_level(logging.INFO, logger="payhara.console")
    async with browser(app, "10.1.0.1") as client:
        for _ in range(5):
            assert (await log_in(client, "nakamura", "a wrong guess!")).status_code == 401
        locked = await log_in(client, "nakamura", PASSWORD)  # the right password is refused too
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) == 15 * 60
        assert "このログインIDは一時的にロックされています" in locked.text and "15分ほど" in locked.text
    async with browser(app, "10.1.0.1") as script:
        api = await api_log_in(script, "Nakamura", PASSWORD)
        assert api.status_code == 429 and api.json()["code"] == "login_locked"
        assert api.headers["retry-after"] == str(15 * 60) and "ロックされています" in api.json()["detail"]
    async with browser(app, "10.1.0.2") as elsewhere:  # the login is locked from every address
        assert (await log_in(elsewhere, "nakamura", PASSWORD)).status_code == 429
        clock.advance(minutes=14, seconds=59)
        assert (await log_in(elsewhere, "nakamura", PASSWORD)).status_code == 429  # refusals did not extend it
        clock.advance(seconds=2)
        assert (await log_in(elsewhere, "nakamura", PASSWORD)).status_code == 303
    logged = caplog.text
    assert "login='nakamura' address=10.1.0.1 reason=wrong_login_or_password" in logged
    assert "now locked_login" in logged and "reason=locked_login" in logged
    assert "a wrong guess!" not in logged and PASSWORD not in logged


async def test_a_success_ends_the_run_of_failures(app, db):
    await add_operator(db, "kato", "加藤", PASSWORD)
    async with browser(app, "10.2.0.1") as client:
        for _ in range(4):
            await log_in(client, "kato", "a wrong guess!")
        assert (await log_in(client, "kato")).status_code == 303
    async with browser(app, "10.2.0.1") as client:
        for _ in range(4):
            assert (await log_in(client, "kato", "a wrong guess!")).status_code == 401
        assert (await log_in(client, "kato")).status_code == 303


async def test_guesses_in_parallel_get_no_more_tries_than_in_turn(app, db):
    await add_operator(db, "ito", "伊藤", PASSWORD)
    async with browser(app, "10.3.0.1") as client:
        answers = await asyncio.gather(*(api_log_in(client, "ito", f"guess number {n}") for n in range(15)))
    # each guess is written before its password is checked, then the count is read again:
    # however they interleave, no more than five are checked
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) <= 5 and statuses.count(429) == 15 - statuses.count(401)


async def test_many_failures_from_one_address_lock_that_address(app, operator, clock):
    async with browser(app, "10.4.0.1") as client:
        for n in range(20):  # a different login each time: no login reaches its own threshold
            assert (await api_log_in(client, f"guess-{n}", "a wrong guess!")).status_code == 401
        locked = await log_in(client, "tanaka", PASSWORD)
        assert locked.status_code == 429 and "この接続元からのログインの失敗が続いたため" in locked.text
    async with browser(app, "10.4.0.2") as neighbour:  # another address is not locked
        assert (await api_log_in(neighbour, "tanaka")).status_code == 200
    clock.advance(minutes=15, seconds=1)
    async with browser(app, "10.4.0.1") as client:
        assert (await log_in(client, "tanaka", PASSWORD)).status_code == 303


# --- CSRF ---------------------------------------------------------------------------------

async def test_a_form_post_without_the_right_token_is_refused_and_changes_nothing(app, db, operator):
    async with browser(app) as client:
        await log_in(client)
        token = client.cookies[SESSION_COOKIE]
        for data in ({}, {"csrf_token": ""}, {"csrf_token": "not-the-token"}):
            refused = await client.post("/logout", data=data)
            assert refused.status_code == 403 and "画面の有効期限が切れたか" in refused.text
            assert 'lang="ja"' in refused.text
            assert await session_rows(db, app, token) == 1
        assert (await client.get("/")).status_code == 200


async def test_an_api_write_without_the_right_header_is_refused_and_changes_nothing(app, db, operator):
    async with browser(app) as client:
        answer = (await api_log_in(client)).json()
        token = client.cookies[SESSION_COOKIE]
        for headers in ({}, {"X-CSRF-Token": "not-the-token"}, {"X-CSRF-Token": answer["csrf_token"][:-1]}):
            refused = await client.delete("/api/v1/session", headers=headers)
            assert refused.status_code == 403
            assert refused.json() == {"code": "csrf_failed", "detail": refused.json()["detail"]}
            assert "画面の有効期限" in refused.json()["detail"]
            assert await session_rows(db, app, token) == 1
        assert (await client.get("/api/v1/tasks")).status_code == 200


async def test_a_log_in_from_another_site_is_refused(app, operator):
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site", "Origin": "http://console.test"}, {"Origin": "null"}):
        async with browser(app) as client:  # no session yet: where the request comes from decides
            form = await client.post("/login", data={"login": "tanaka", "password": PASSWORD}, headers=headers)
            assert form.status_code == 403 and "有効期限が切れました" in form.text
            api = await client.post("/api/v1/session", json={"login": "tanaka", "password": PASSWORD},
                                    headers=headers)
            assert api.status_code == 403 and api.json()["code"] == "csrf_failed"
    async with browser(app) as client:  # the log-in form's session needs its token
        await client.get("/login")
        refused = await client.post("/login", data={"login": "tanaka", "password": PASSWORD, "csrf_token": "x"})
        assert refused.status_code == 403 and (await client.get("/")).status_code == 303
    async with browser(app) as client:
        same = await client.post("/login", data={"login": "tanaka", "password": PASSWORD},
                                 headers={"Origin": "http://console.test", "Sec-Fetch-Site": "same-origin"})
        assert same.status_code == 303


async def test_the_api_log_in_takes_json_only(app, operator):
    async with browser(app) as client:
        form = await client.post("/api/v1/session", data={"login": "tanaka", "password": PASSWORD})
        assert form.status_code == 415 and form.json()["code"] == "unsupported_media_type"
        for body in ({"login": "tanaka"}, {"login": 1, "password": PASSWORD}, ["tanaka", PASSWORD]):
            bad = await client.post("/api/v1/session", json=body)
            assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
        wrong = await api_log_in(client, password="not the password")
        assert wrong.status_code == 401 and wrong.json() == {
            "code": "login_refused", "detail": "ログインIDまたはパスワードが正しくありません。"}
        assert SESSION_COOKIE not in client.cookies


# --- every route --------------------------------------------------------------------------

OPEN_ROUTES = {("GET", "/login"), ("POST", "/login"), ("POST", "/api/v1/session"),
               ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


@pytest.fixture
async def console_app(desk):
    """The console as `payhara run console` builds it (its lifespan not started)."""
    from services.console.main import create_app

    app = create_app(desk)
    yield app
    await app.state.runtime.engine.dispose()


def routes_of(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(app.routes):
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        found.extend((method, path) for method in sorted(route.methods or ()) if method != "HEAD")
    return found


async def test_no_route_but_the_log_in_and_the_probes_answers_without_a_session(console_app):
    routes = routes_of(console_app)
    assert OPEN_ROUTES <= set(routes)
    guarded = [r for r in routes if r not in OPEN_ROUTES]
    assert ("GET", "/") in guarded and ("GET", "/api/v1/tasks") in guarded
    async with browser(console_app) as client:
        for method, path in guarded:
            answer = await client.request(method, path)
            if path.startswith("/api/"):
                assert answer.status_code == 401, (method, path)
                assert answer.json()["code"] == "unauthenticated", (method, path)
            else:
                assert answer.status_code == 303 and answer.headers["location"] == "/login", (method, path)


async def test_no_write_is_taken_without_the_csrf_token(console_app, operator):
    writes = [(m, p) for m, p in routes_of(console_app)
              if m not in ("GET", "HEAD", "OPTIONS") and (m, p) not in OPEN_ROUTES]
    assert ("POST", "/logout") in writes and ("DELETE", "/api/v1/session") in writes
    async with browser(console_app) as client:
        assert (await api_log_in(client)).status_code == 200
        for method, path in writes:
            answer = await client.request(method, path)
            assert answer.status_code == 403, (method, path)
        assert (await client.get("/api/v1/tasks")).status_code == 200


# --- control characters and error pages ---------------------------------------------------

@pytest.mark.parametrize("login, password", [("tanaka\x00", PASSWORD), ("\x00", PASSWORD), ("tan\x1baka", PASSWORD),
                                             ("tanaka", PASSWORD + "\x00"), ("tanaka\n", PASSWORD)])
async def test_a_control_character_in_the_log_in_is_a_clean_400(app, operator, login, password):
    async with browser(app) as client:
        form = await client.get("/login")
        page = await client.post("/login", data={"login": login, "password": password,
                                                  "csrf_token": csrf_token(form)})
        assert page.status_code == 400 and "制御文字" in page.text and 'lang="ja"' in page.text
        api = await client.post("/api/v1/session", json={"login": login, "password": password})
        assert api.status_code == 400 and api.json()["code"] == "invalid_characters"
        assert (await client.get("/")).status_code == 303


async def test_a_control_character_in_a_query_or_any_form_field_is_a_clean_400(app, operator):
    async with browser(app) as client:
        assert (await client.get("/login?next=%00")).status_code == 400
        page = (await log_in(client), await client.get("/"))[1]
        refused = await client.post("/logout", data={"csrf_token": csrf_token(page), "note": "a\x00b"})
        assert refused.status_code == 400 and (await client.get("/")).status_code == 200


async def test_error_pages_and_answers_are_in_japanese(app, operator):
    async with browser(app) as client:
        await log_in(client)
        missing = await client.get("/no-such-page")
        assert missing.status_code == 404 and "お探しのページは見つかりません" in missing.text
        assert missing.headers["cache-control"] == "no-store"
        wrong_method = await client.get("/logout")
        assert wrong_method.status_code == 405 and "この操作はできません" in wrong_method.text
        api = await client.get("/api/v1/nothing")
        assert api.status_code == 404 and api.json() == {"code": "not_found", "detail": "お探しのページは見つかりません。"}


# --- payhara operators add ----------------------------------------------------------------

def payhara(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": ROOT}, timeout=60)


async def test_the_cli_adds_an_operator_with_a_role_from_stdin(app, db):
    added = await asyncio.to_thread(payhara, "operators", "add", "Kobayashi", "--name", "小林 さくら",
                                    "--role", "supervisor", "--password-stdin", stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert "責任者「kobayashi」（小林 さくら）を登録しました" in added.stdout
    async with db() as conn:
        row = (await conn.execute(select(operators).where(operators.c.login == "kobayashi"))).one()
    assert row.role == "supervisor" and row.password_hash.startswith("$argon2id$")
    async with browser(app) as client:
        answer = await api_log_in(client, "kobayashi", "a long enough password")
        assert answer.status_code == 200 and answer.json()["operator"]["role"] == "supervisor"


@pytest.mark.parametrize("args, stdin, code, says", [
    (("--role", "operator"), "short pw\n", 1, "12〜1024文字"),
    (("--role", "operator"), "long enough\x1bpassword\n", 1, "制御文字"),
    (("--role", "admin"), "a long enough password\n", 2, "役割は operator または supervisor"),
])
async def test_the_cli_refuses_a_short_password_and_an_unknown_role(db, args, stdin, code, says):
    refused = await asyncio.to_thread(payhara, "operators", "add", "refused-one", "--name", "拒否",
                                      *args, "--password-stdin", stdin=stdin)
    assert refused.returncode == code and says in refused.stderr
    async with db() as conn:
        assert await conn.scalar(
            select(func.count()).select_from(operators).where(operators.c.login == "refused-one")) == 0
