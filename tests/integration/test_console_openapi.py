"""The console's JSON API against its own OpenAPI document, on the real database: the document is
served to a logged-in session only; schemathesis sends, on a supervisor's session (its cookie and
CSRF header injected), what the document allows and much that it does not, and every answer must
be no server error, a documented status with its documented media type, headers and body, and in
Japanese when it refuses. Bounded: a fixed number of examples per operation, the same ones every
run (derandomized). The answers random input rarely reaches are sent on purpose at the end."""
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from services.console import main as console_main
from services.console.accounts import add_operator
from services.console.sessions import CSRF_HEADER, SESSION_COOKIE
from services.console.tasks import record_tasks
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from shared.settings import Settings

LOGIN, PASSWORD = "fuzz-supervisor", "correct horse battery"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
# what the fuzzer may leave behind, emptied before and after (not the operators: other modules' own)
TABLES = ("console.tasks, console.task_notes, console.call_outcomes, console.reviews, console.review_decisions, "
          "console.data_views, console.outbox, console.inbox, console.login_failures, console.operator_sessions, "
          "console.phone_submissions, console.phone_answers")


async def empty(desk) -> None:
    engine = make_engine(desk)
    async with engine.begin() as conn:
        await conn.execute(text(f"truncate {TABLES} cascade"))
    await engine.dispose()


@pytest.fixture
async def emptied(desk):
    await empty(desk)
    engine = make_engine(desk)
    await add_operator(make_sessions(engine), LOGIN, "試験 責任者", PASSWORD, role="supervisor")
    await engine.dispose()
    yield
    await empty(desk)


def serving_only(app):
    """main.create_app's app (its gate, routes and error answers) without its lifespan: no
    consumers, relay or purge. Its engine connects in the event loop schemathesis runs the app
    in, and is disposed there."""
    async def served(scope, receive, send):
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await app.state.runtime.engine.dispose()
        await send({"type": "lifespan.shutdown.complete"})
    return served


def log_in(app) -> dict:
    """The headers of a logged-in supervisor's session: its cookie and its CSRF token."""
    with asgi.get_client(app) as client:
        answer = client.post("/api/v1/session", json={"login": LOGIN, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Cookie": f"{SESSION_COOKIE}={answer.cookies[SESSION_COOKIE]}", CSRF_HEADER: answer.json()["csrf_token"]}


@pytest.fixture
def console(desk, emptied):
    """The app main.create_app composes, on the test database, and a session on it."""
    app = serving_only(console_main.create_app(desk))
    yield app, log_in(app)
    asgi.shutdown_lifespans()  # its engine's connections close in the loop that opened them


# the document as the console serves it (/api/openapi.json, to a session); the app each case is
# sent to is the fixture's
DOCUMENT = console_main.create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(max_examples=40, derandomize=True, database=None, deadline=timedelta(seconds=5),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_json_api_answers_as_its_document_says(case, console):
    app, session = console
    response = case.call_and_validate(app=app, headers=session, checks=CHECKS, timeout=10)
    if response.status_code >= 400:
        answer = response.json()
        assert JAPANESE.search(answer["detail"]), answer


def test_the_document_is_served_to_a_session_only_and_describes_the_api_alone(console):
    app, session = console
    with asgi.get_client(app) as client:
        refused = client.get("/api/openapi.json")
        served = client.get("/api/openapi.json", headers=session)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    assert served.status_code == 200 and served.json() == DOCUMENT
    paths = DOCUMENT["paths"]
    assert set(paths) == {
        "/api/v1/session", "/api/v1/tasks", "/api/v1/tasks/{task_id}", "/api/v1/tasks/{task_id}/claim",
        "/api/v1/tasks/{task_id}/release", "/api/v1/tasks/{task_id}/outcome", "/api/v1/tasks/{task_id}/done",
        "/api/v1/reviews/{consultation_id}", "/api/v1/reviews/{consultation_id}/decision", "/api/v1/audit",
        "/api/v1/supervisor", "/api/v1/phone-consultations", "/api/v1/phone-consultations/{submission_id}",
        "/api/v1/phone-consultations/{submission_id}/status-token"}
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]  # FastAPI's 422 is never ours

    def body(path: str, method: str, part: str = "body") -> dict:
        operation = paths[path][method]
        content = (operation["requestBody"] if part == "body" else operation["responses"][part])["content"]
        return content["application/json"]["schema"]
    assert body("/api/v1/session", "post")["required"] == ["login", "password"]
    assert body("/api/v1/session", "post", "200") == {"$ref": "#/components/schemas/SessionOut"}
    assert body("/api/v1/tasks/{task_id}/done", "post") == {"$ref": "#/components/schemas/DoneIn"}
    assert body("/api/v1/tasks/{task_id}/done", "post", "409") == {"$ref": "#/components/schemas/Refusal"}
    assert body("/api/v1/audit", "get", "200") == {"$ref": "#/components/schemas/AuditOut"}
    assert paths["/api/v1/session"]["post"]["responses"]["429"]["headers"]["Retry-After"]["required"] is True
    assert paths["/api/v1/session"]["post"]["security"] == [{}]
    assert paths["/api/v1/tasks"]["get"]["security"] == [{"session": []}]
    assert paths["/api/v1/tasks/{task_id}/done"]["post"]["security"] == [{"session": [], "csrf": []}]
    assert DOCUMENT["components"]["securitySchemes"]["session"] == {
        "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
        "description": DOCUMENT["components"]["securitySchemes"]["session"]["description"]}


@pytest.fixture
async def tasks_to_work_on(desk, emptied) -> dict:
    engine = make_engine(desk)
    db, issued = make_sessions(engine), {}
    for kind in ("call", "email", "review", "unreachable"):
        task = ev.TaskIssued(
            task_id=uuid.uuid4(), consultation_id=uuid.uuid4(), receipt_no=f"PH-261202-{len(issued):04d}0",
            kind=kind, reason="member_unknown" if kind == "review" else None,
            booking_id=uuid.uuid4() if kind == "call" else None,
            due_starts_at=datetime.now(timezone.utc), due_ends_at=None, consultant_name="試験 花子",
            contact=ev.Contact(method="phone", phone="0312345678"), category="in_person", summary="怒鳴られた", urls=[])
        await record_tasks([Delivery(ev.wrap(task, task.consultation_id), task)], db)
        issued[kind] = task
    await engine.dispose()
    return issued


def test_the_answers_random_input_rarely_reaches_match_the_document(console, tasks_to_work_on):
    app, session = console
    tasks = tasks_to_work_on

    def send(path: str, method: str, expected: int, **parts) -> dict | None:
        case = schema[path][method].Case(**parts)
        answer = case.call_and_validate(app=app, headers=session, checks=CHECKS)
        assert answer.status_code == expected, (path, answer.text)
        return answer.json() if answer.content else None

    def task(kind: str) -> dict:
        return {"task_id": str(tasks[kind].task_id)}
    assert len(send("/api/v1/tasks", "GET", 200, query={"due": "today"})) == 4
    assert send("/api/v1/tasks/{task_id}", "GET", 200, path_parameters=task("call"))["contact"]["phone_label"] == \
        "03-1234-5678"
    for kind in ("call", "email", "review", "unreachable"):
        assert send("/api/v1/tasks/{task_id}/claim", "POST", 200, path_parameters=task(kind))["holder"]
    assert send("/api/v1/tasks/{task_id}/release", "POST", 200, path_parameters=task("unreachable"))["holder"] is None
    assert send("/api/v1/tasks/{task_id}/outcome", "POST", 200, path_parameters=task("call"),
                body={"outcome": "no_answer", "note": "留守電"})["note_length"] == 3
    assert send("/api/v1/tasks/{task_id}/done", "POST", 200, path_parameters=task("email"),
                body={"note": "返信した"})["kind"] == "email"
    assert send("/api/v1/tasks/{task_id}/done", "POST", 409, path_parameters=task("email"),
                body={"note": "返信した"})["code"] == "task_closed"
    review = {"consultation_id": str(tasks["review"].consultation_id)}
    assert send("/api/v1/reviews/{consultation_id}", "GET", 200, path_parameters=review)["decision"] is None
    assert send("/api/v1/reviews/{consultation_id}/decision", "POST", 200, path_parameters=review,
                body={"decision": "confirm", "reason": "checked_by_phone"})["reason_label"] == "電話で確認した"
    audit = send("/api/v1/audit", "GET", 200, query={"limit": 3})
    assert len(audit["views"]) == 3 and audit["next_before"] is not None
    assert send("/api/v1/session", "DELETE", 204) is None
    assert send("/api/v1/tasks", "GET", 401)["code"] == "unauthenticated"
