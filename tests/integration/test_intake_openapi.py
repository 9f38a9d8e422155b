"""Intake's JSON API against its own OpenAPI document, on the real database: schemathesis sends
what the document allows and much that it does not (bodies, headers, receipt numbers), and every
answer must be no server error, a documented status with its documented media type, headers and
body, and in Japanese when it refuses. Bounded: a fixed number of examples per operation, the same
ones every run (derandomized), so it stays a few seconds of `make test`."""
import re
from datetime import timedelta

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

from services.intake import main as intake_main, schemas
from shared.db import make_engine
from shared.settings import Settings

API = "^/api/"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
TABLES = "intake.consultations, intake.outbox, intake.inbox, intake.submission_keys"


async def empty(desk) -> None:
    engine = make_engine(desk)
    async with engine.begin() as conn:
        await conn.execute(text(f"truncate {TABLES}"))
    await engine.dispose()


@pytest.fixture
async def emptied(desk):
    """No consultation before the run, and none of the fuzzer's left after it for other tests."""
    await empty(desk)
    yield
    await empty(desk)


def serving_only(app):
    """main.create_app's app (routes, protections, error answers) without its lifespan: no
    consumers and no relay, so no broker is needed and nothing the fuzzer records is published.
    Its engine connects in the event loop schemathesis runs the app in, and is disposed there."""
    async def served(scope, receive, send):
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await app.state.runtime.engine.dispose()
        await send({"type": "lifespan.shutdown.complete"})
    return served


@pytest.fixture
def intake(desk, emptied):
    """The app main.create_app composes, on the test database (rate limits are off in tests)."""
    yield serving_only(intake_main.create_app(desk))
    asgi.shutdown_lifespans()  # its engine's connections close in the loop that opened them


# the document as intake serves it (/openapi.json); the app each case is sent to is the fixture's
# (schemathesis's lazy `from_fixture` does not run under pytest 9.2: it sets Node._nodeid)
DOCUMENT = intake_main.create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT).include(path_regex=API)


@schema.parametrize()
# one app and one emptied database for all of an operation's examples; a loaded machine is no failure
@settings(max_examples=100, derandomize=True, database=None, deadline=timedelta(seconds=5),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_json_api_answers_as_its_document_says(case, intake):
    response = case.call_and_validate(app=intake, checks=CHECKS, timeout=10)
    if response.status_code >= 400:
        answer = response.json()
        assert JAPANESE.search(answer["detail"]), answer
        for error in answer.get("errors", []):
            assert JAPANESE.search(error["message"]), error


def test_the_document_describes_the_api_and_only_what_the_routes_do(intake):
    with asgi.get_client(intake) as client:
        served = client.get("/openapi.json")
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    document = served.json()
    assert document == DOCUMENT
    submit = document["paths"]["/api/v1/consultations"]["post"]
    body = submit["requestBody"]["content"]["application/json"]["schema"]
    assert submit["requestBody"]["required"] is True
    assert set(body["properties"]) == {"consultant", "institution", "contact", "preferred_time", "urgent",
                                       "category", "summary", "urls", "consent"}
    assert set(body["properties"]["consultant"]["properties"]) == {"name", "name_kana", "role", "member_no"}
    assert set(body["properties"]["institution"]["properties"]) == {"name", "prefecture", "manager_member_no"}
    assert set(body["properties"]["contact"]["properties"]) == {"method", "phone", "email"}
    assert "$ref" not in str(body) and "$defs" not in str(body)  # complete in place
    assert [p["name"] for p in submit["parameters"]] == ["Idempotency-Key"]
    assert set(submit["responses"]) == {"202", "413", "415", "422", "429", "500", "503"}
    status = document["paths"]["/api/v1/consultations/{receipt_no}"]["get"]
    assert [(p["name"], p["in"]) for p in status["parameters"]] == [("receipt_no", "path"), ("X-Status-Token", "header")]
    assert set(status["responses"]) == {"200", "404", "429", "500", "503"}
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's 422 is never ours
    for answer in ("429", "503"):
        assert submit["responses"][answer]["headers"]["Retry-After"]["required"] is True


def test_a_receipt_and_its_status_match_the_document(intake):
    """The answers random input rarely reaches: a receipt, the same one again for the same key,
    a key reused for another consultation, and the status found with the receipt's code."""
    submit = schema["/api/v1/consultations"]["POST"]
    look_up = schema["/api/v1/consultations/{receipt_no}"]["GET"]
    key = {"Idempotency-Key": "openapi-fuzz-1"}
    first = submit.Case(body=schemas.EXAMPLE, headers=key).call_and_validate(app=intake, checks=CHECKS)
    again = submit.Case(body=schemas.EXAMPLE, headers=key).call_and_validate(app=intake, checks=CHECKS)
    assert first.status_code == again.status_code == 202 and again.headers["idempotent-replayed"] == ["true"]
    assert again.json() == first.json()
    other = {**schemas.EXAMPLE, "summary": "別の相談です。"}
    reused = submit.Case(body=other, headers=key).call_and_validate(app=intake, checks=CHECKS)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    receipt = first.json()
    found = look_up.Case(path_parameters={"receipt_no": receipt["receipt_no"]},
                         headers={"X-Status-Token": receipt["status_token"].lower()}).call_and_validate(app=intake, checks=CHECKS)
    assert found.status_code == 200 and found.json()["status"] == "received"
    wrong = look_up.Case(path_parameters={"receipt_no": receipt["receipt_no"]},
                         headers={"X-Status-Token": "0000-0000-0000"}).call_and_validate(app=intake, checks=CHECKS)
    assert wrong.status_code == 404 and wrong.json()["code"] == "not_found"
