"""Operators working on tasks, on real Postgres (and the real broker for the review queue): one
operator of many gets a task, a claim left expires, a call's outcome and a review's decision are
published once through the console's outbox with the task closed, and only by the task's holder."""
import asyncio
import re
from contextlib import aclosing
import uuid
from datetime import datetime, timezone
from pathlib import Path

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from services.console import handlers, web
from services.console.orm import call_outcomes, claims, operators, outbox, reviews, task_notes, tasks
from services.console.passwords import hash_password
from services.console.review_labels import CANDIDATE_WHY, REVIEW_REASONS
from services.console.tasks import record_tasks
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Consumers, Delivery
from shared.topology import queue_name
from tests.support import publish_envelopes
from tests.console_support import Clock, browser, csrf_token

PASSWORD = "correct horse battery"
OPERATORS = [f"claimer-{n}" for n in range(10)]


@pytest.fixture(scope="module")
async def db(desk):
    engine = make_engine(desk, pool_size=12)
    async with engine.begin() as conn:  # one hash for all: ten argon2 hashes would only cost time
        password_hash = hash_password(PASSWORD)
        await conn.execute(insert(operators).values(
            [{"login": login, "display_name": f"担当者{n}", "password_hash": password_hash}
             for n, login in enumerate(OPERATORS)]))
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(desk, db, clock) -> FastAPI:
    app = FastAPI()
    web.install(app, db, desk, clock=clock)
    return app


async def api_client(app: FastAPI, login: str) -> httpx.AsyncClient:
    """A logged-in API client whose writes carry the session's CSRF header."""
    client = browser(app)
    answer = await client.post("/api/v1/session", json={"login": login, "password": PASSWORD})
    assert answer.status_code == 200
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


async def issue(db, kind: str = "call", **changes) -> ev.TaskIssued:
    consultation_id = uuid.uuid4()
    fields = dict(
        task_id=uuid.uuid4(), consultation_id=consultation_id, receipt_no=f"PH-261130-{uuid.uuid4().int % 10**5:05d}",
        kind=kind, booking_id=uuid.uuid4() if kind == "call" else None, attempt=2 if kind == "call" else 1,
        due_starts_at=datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc),
        due_ends_at=datetime(2026, 12, 1, 1, 30, tzinfo=timezone.utc),
        consultant_name="山田 太郎", contact=ev.Contact(method="phone", phone="0312345678"),
        category="in_person", summary="受付で大声で威圧された", urls=[])
    task = ev.TaskIssued(**(fields | changes))
    assert await record_tasks([Delivery(ev.wrap(task, task.consultation_id), task)], db) == 1
    return task


async def published(db, correlation_id: uuid.UUID, event_type: type[ev.Event]) -> list:
    async with db() as conn:
        bodies = (await conn.scalars(select(outbox.c.body).where(
            outbox.c.correlation_id == correlation_id, outbox.c.routing_key == event_type.routing_key)
            .order_by(outbox.c.id))).all()
    return [(body, event_type.model_validate(ev.Envelope.model_validate_json(body).data)) for body in bodies]


async def task_row(db, task_id: uuid.UUID):
    async with db() as conn:
        return (await conn.execute(select(tasks).where(tasks.c.task_id == task_id))).one()


async def operator_id(db, login: str) -> int:
    async with db() as conn:
        return await conn.scalar(select(operators.c.id).where(operators.c.login == login))


# --- claims -------------------------------------------------------------------------------

async def test_a_task_keeps_its_booking_and_attempt(db):
    task = await issue(db)
    row = await task_row(db, task.task_id)
    assert (row.booking_id, row.attempt, row.claimed_by) == (task.booking_id, 2, None)


async def queues(client) -> str:
    """Today's and later days' queues: a task's day is today or later, whenever the test runs."""
    return (await client.get("/")).text + (await client.get("/upcoming")).text


async def test_of_ten_operators_claiming_at_once_exactly_one_gets_the_task(app, db):
    task = await issue(db)
    clients = [await api_client(app, login) for login in OPERATORS]
    try:
        answers = await asyncio.gather(*(c.post(f"/api/v1/tasks/{task.task_id}/claim") for c in clients))
        statuses = [a.status_code for a in answers]
        assert sorted(statuses) == [200] + [409] * 9
        winner = OPERATORS[statuses.index(200)]
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {"task_taken"}
        assert (await task_row(db, task.task_id)).claimed_by == await operator_id(db, winner)
        async with db() as conn:  # the supervisors' history holds the one claim that was made
            made = (await conn.execute(select(claims.c.operator_id).where(claims.c.task_id == task.task_id))).all()
        assert made == [(await operator_id(db, winner),)]
        listed = [t for t in (await clients[0].get("/api/v1/tasks")).json() if t["task_id"] == str(task.task_id)]
        assert listed[0]["holder"]["display_name"] == f"担当者{OPERATORS.index(winner)}"
        other = clients[(statuses.index(200) + 1) % len(clients)]  # someone who did not get it
        assert f"担当者{OPERATORS.index(winner)} さんが対応中" in await queues(other)
    finally:
        for client in clients:
            await client.aclose()


async def test_a_claim_left_expires_and_another_operator_takes_it_over(app, db, clock):
    task = await issue(db)
    first, second = await api_client(app, OPERATORS[0]), await api_client(app, OPERATORS[1])
    async with aclosing(first), aclosing(second):
        assert (await first.post(f"/api/v1/tasks/{task.task_id}/claim")).status_code == 200
        clock.advance(minutes=29)
        assert (await first.get("/api/v1/tasks")).status_code == 200  # looking around, not at the task
        refused = await second.post(f"/api/v1/tasks/{task.task_id}/claim")
        assert refused.status_code == 409 and "担当者0 さんが対応中" in refused.json()["detail"]
        clock.advance(minutes=2)  # 31 minutes: the claim was left
        assert "期限切れ" in await queues(second)
        taken = await second.post(f"/api/v1/tasks/{task.task_id}/claim")
        assert taken.status_code == 200 and taken.json()["holder"]["display_name"] == "担当者1"
        late = await first.post(f"/api/v1/tasks/{task.task_id}/outcome", json={"outcome": "reached"})
        assert late.status_code == 409 and late.json()["code"] == "task_taken"
        assert (await first.post(f"/api/v1/tasks/{task.task_id}/release")).status_code == 409
        assert (await second.post(f"/api/v1/tasks/{task.task_id}/release")).json()["holder"] is None
        assert (await first.post(f"/api/v1/tasks/{task.task_id}/claim")).status_code == 200
        unknown = await first.post(f"/api/v1/tasks/{uuid.uuid4()}/claim")
        assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


async def test_a_claim_of_zero_minutes_lets_anyone_take_over_at_once(desk, db, clock):
    app = FastAPI()
    web.install(app, db, desk.model_copy(update={"console_claim_minutes": 0}), clock=clock)
    task = await issue(db)
    first, second = await api_client(app, OPERATORS[2]), await api_client(app, OPERATORS[3])
    async with aclosing(first), aclosing(second):
        assert (await first.post(f"/api/v1/tasks/{task.task_id}/claim")).status_code == 200
        clock.advance(seconds=1)
        assert (await second.post(f"/api/v1/tasks/{task.task_id}/claim")).status_code == 200


# --- call outcomes ------------------------------------------------------------------------

async def test_an_outcome_is_published_once_with_the_booking_and_the_note_s_length_only(app, db, clock):
    task = await issue(db)
    note = "  留守番電話に折り返しを依頼。090-1111-2222  "
    async with aclosing(await api_client(app, OPERATORS[4])) as client:
        assert (await client.post(f"/api/v1/tasks/{task.task_id}/claim")).status_code == 200
        recorded = await client.post(f"/api/v1/tasks/{task.task_id}/outcome",
                                     json={"outcome": "no_answer", "note": note})
        assert recorded.status_code == 200
        assert recorded.json() | {"recorded_at": None} == {
            "task_id": str(task.task_id), "receipt_no": task.receipt_no, "booking_id": str(task.booking_id),
            "attempt": 2, "outcome": "no_answer", "note_length": len(note.strip()), "recorded_at": None}
        again = await client.post(f"/api/v1/tasks/{task.task_id}/outcome", json={"outcome": "reached"})
        assert again.status_code == 409 and again.json()["code"] == "task_closed"
        assert str(task.task_id) not in (await client.get("/api/v1/tasks")).text
    ((body, event),) = await published(db, task.consultation_id, ev.CallOutcomeRecorded)
    assert (event.booking_id, event.attempt, event.outcome, event.note_length, event.receipt_no) == (
        task.booking_id, 2, "no_answer", len(note.strip()), task.receipt_no)
    assert event.operator_id == f"op-{await operator_id(db, OPERATORS[4])}" and event.recorded_at == clock.now
    # the note stays in the console: not its words, not the number in it (a bare "090" also occurs in timestamps)
    assert "090-1111-2222" not in body and "1111-2222" not in body and "留守番" not in body
    row = await task_row(db, task.task_id)
    assert (row.status, row.closed_by) == ("done", await operator_id(db, OPERATORS[4]))
    async with db() as conn:
        assert await conn.scalar(select(task_notes.c.note).where(task_notes.c.task_id == task.task_id)) == note.strip()
        assert await conn.scalar(select(func.count()).select_from(call_outcomes)
                                 .where(call_outcomes.c.task_id == task.task_id)) == 1


async def test_an_outcome_needs_the_claim_of_a_call_task(app, db):
    call, review = await issue(db), await issue(db, kind="review")
    holder, other = await api_client(app, OPERATORS[5]), await api_client(app, OPERATORS[6])
    async with aclosing(holder), aclosing(other):
        unclaimed = await other.post(f"/api/v1/tasks/{call.task_id}/outcome", json={"outcome": "reached"})
        assert unclaimed.status_code == 409 and unclaimed.json()["code"] == "not_claimed"
        await holder.post(f"/api/v1/tasks/{call.task_id}/claim")
        taken = await other.post(f"/api/v1/tasks/{call.task_id}/outcome", json={"outcome": "reached"})
        assert taken.status_code == 409 and taken.json()["code"] == "task_taken"
        for body in ({"outcome": "hung_up"}, {"outcome": "reached", "extra": 1}, {"note": "x"}):
            assert (await holder.post(f"/api/v1/tasks/{call.task_id}/outcome", json=body)).status_code == 422
        control = await holder.post(f"/api/v1/tasks/{call.task_id}/outcome",
                                    json={"outcome": "reached", "note": "\x1b"})
        assert control.status_code == 400 and control.json()["code"] == "invalid_characters"
        await holder.post(f"/api/v1/tasks/{review.task_id}/claim")
        wrong = await holder.post(f"/api/v1/tasks/{review.task_id}/outcome", json={"outcome": "reached"})
        assert wrong.status_code == 409 and wrong.json()["code"] == "wrong_task_kind"
    assert await published(db, call.consultation_id, ev.CallOutcomeRecorded) == []
    assert (await task_row(db, call.task_id)).status == "open"


async def test_the_task_page_claims_and_records_an_outcome_by_forms_once(app, db):
    task = await issue(db)
    async with browser(app) as client:
        form = await client.get("/login")
        await client.post("/login", data={"login": OPERATORS[7], "password": PASSWORD, "csrf_token": csrf_token(form)})
        page = await client.get(f"/tasks/{task.task_id}")
        assert page.status_code == 200 and "このタスクを担当する" in page.text and 'id="outcome-form"' not in page.text
        token = csrf_token(page)
        claimed = await client.post(f"/tasks/{task.task_id}/claim", data={"csrf_token": token})
        assert claimed.status_code == 303 and claimed.headers["location"] == f"/tasks/{task.task_id}"
        page = await client.get(f"/tasks/{task.task_id}")
        assert "あなたが担当しています" in page.text and 'id="outcome-form"' in page.text and "2回目" in page.text
        clicks = await asyncio.gather(*(client.post(f"/tasks/{task.task_id}/outcome", data={
            "csrf_token": token, "outcome": "reached", "note": "本人と話した"}) for _ in range(2)))
        assert sorted(c.status_code for c in clicks) == [303, 409]
        done = await client.get(f"/tasks/{task.task_id}")
        assert "対応済み" in done.text and "つながった" in done.text and "本人と話した" in done.text
    assert len(await published(db, task.consultation_id, ev.CallOutcomeRecorded)) == 1


# --- reviews ------------------------------------------------------------------------------

def review_requested(task: ev.TaskIssued) -> Delivery[ev.EligibilityReviewRequested]:
    event = ev.EligibilityReviewRequested(
        consultation_id=task.consultation_id, receipt_no=task.receipt_no, reason="member_unknown",
        candidates=[ev.ReviewCandidate(ref="M0002", name="架空 花子", why="same_name"),
                    ev.ReviewCandidate(ref="M0107", name="架空 華子", why="same_kana")])
    return Delivery(ev.wrap(event, event.consultation_id), event)


async def test_a_review_shows_its_reason_and_candidates_and_is_decided_once(app, db, clock):
    task = await issue(db, kind="review", reason="member_unknown", consultant_name="架空 花子")
    delivery = review_requested(task)
    await handlers.review_requested([delivery, delivery], db)
    await handlers.review_requested([delivery], db)  # redelivered
    client, other = await api_client(app, OPERATORS[8]), await api_client(app, OPERATORS[9])
    async with aclosing(client), aclosing(other):
        page = await client.get(f"/reviews/{task.consultation_id}")
        assert page.status_code == 200
        assert REVIEW_REASONS["member_unknown"] in page.text
        assert "M0002" in page.text and "架空 華子" in page.text and "ふりがなが同じ" in page.text
        assert "会員番号（入力されたもの）" in page.text and 'id="decision-form"' not in page.text
        assert (await client.get(f"/tasks/{task.task_id}")).text.count("M0107") == 1
        api = (await client.get(f"/api/v1/reviews/{task.consultation_id}")).json()
        assert api["reason_label"] == REVIEW_REASONS["member_unknown"] and api["decision"] is None
        assert [c["why_label"] for c in api["candidates"]] == ["名前が同じ", "ふりがなが同じ"]

        decision = {"decision": "confirm", "reason": "member_no_typo", "note": "M0002 の方と電話で確認"}
        assert (await client.post(f"/api/v1/reviews/{task.consultation_id}/decision", json=decision)).status_code == 409
        await client.post(f"/api/v1/tasks/{task.task_id}/claim")
        assert (await other.post(f"/api/v1/reviews/{task.consultation_id}/decision", json=decision)).status_code == 409
        mismatched = await client.post(f"/api/v1/reviews/{task.consultation_id}/decision",
                                       json=decision | {"reason": "not_a_member"})
        assert mismatched.status_code == 422
        decided = await client.post(f"/api/v1/reviews/{task.consultation_id}/decision", json=decision)
        assert decided.status_code == 200 and decided.json()["reason_label"].startswith("会員番号の入力誤り")
        again = await client.post(f"/api/v1/reviews/{task.consultation_id}/decision", json=decision)
        assert again.status_code == 409 and again.json()["code"] == "already_decided"
        shown = await client.get(f"/reviews/{task.consultation_id}")
        assert "対象として確認する" in shown.text and "M0002 の方と電話で確認" in shown.text
    ((body, event),) = await published(db, task.consultation_id, ev.EligibilityDecided)
    assert (event.decision, event.reason, event.receipt_no, event.decided_at) == (
        "confirm", "member_no_typo", task.receipt_no, clock.now)
    assert event.operator_id == f"op-{await operator_id(db, OPERATORS[8])}" and "電話で確認" not in body
    assert (await task_row(db, task.task_id)).status == "done"


async def test_a_review_decided_by_the_form(app, db):
    task = await issue(db, kind="review", reason="institution_unknown")
    await handlers.review_requested([review_requested(task)], db)
    async with browser(app) as client:
        form = await client.get("/login")
        await client.post("/login", data={"login": OPERATORS[0], "password": PASSWORD, "csrf_token": csrf_token(form)})
        token = csrf_token(await client.get("/"))
        await client.post(f"/tasks/{task.task_id}/claim", data={"csrf_token": token})
        page = await client.get(f"/tasks/{task.task_id}")
        assert 'id="decision-form"' in page.text and 'value="reject:withdrawn"' in page.text
        decided = await client.post(f"/reviews/{task.consultation_id}/decision",
                                    data={"csrf_token": token, "decision": "reject:withdrawn", "note": ""})
        assert decided.status_code == 303
        assert "対象外とする" in (await client.get(decided.headers["location"])).text
    ((_, event),) = await published(db, task.consultation_id, ev.EligibilityDecided)
    assert (event.decision, event.reason) == ("reject", "withdrawn")


async def test_the_api_is_documented_with_its_bodies_and_answers(desk):
    from services.console.main import create_app

    app = create_app(desk)
    try:
        paths = app.openapi()["paths"]
    finally:
        await app.state.runtime.engine.dispose()

    def schema(path: str, method: str, part: str) -> str:
        operation = paths[path][method]
        content = (operation["requestBody"] if part == "body" else operation["responses"][part])["content"]
        return content["application/json"]["schema"].get("$ref", "").rsplit("/", 1)[-1]
    assert schema("/api/v1/tasks/{task_id}/claim", "post", "200") == "TaskOut"
    assert schema("/api/v1/tasks/{task_id}/claim", "post", "409") == "Refusal"
    assert schema("/api/v1/tasks/{task_id}/outcome", "post", "body") == "OutcomeIn"
    assert schema("/api/v1/tasks/{task_id}/outcome", "post", "200") == "OutcomeOut"
    assert schema("/api/v1/reviews/{consultation_id}", "get", "200") == "ReviewOut"
    assert schema("/api/v1/reviews/{consultation_id}/decision", "post", "body") == "DecisionIn"
    assert schema("/api/v1/reviews/{consultation_id}/decision", "post", "200") == "DecisionOut"


def test_every_reason_and_candidate_code_of_the_eligibility_rules_has_a_japanese_label():
    source = (Path(__file__).parents[2] / "services" / "eligibility" / "rules.py").read_text(encoding="utf-8")
    reasons = set(re.findall(r'_review\("([a-z_]+)"', source))
    whys = set(re.findall(r'_about\(\[?\w+\]?, "([a-z_]+)"\)', source))
    whys |= set(re.findall(r'Candidate\([\w.]+, [\w.]+, "([a-z_]+)"\)', source))
    whys |= set(re.findall(r'return "([a-z_]+)"', source))  # _likeness: same_name, same_kana
    assert len(reasons) == 9 and reasons <= set(REVIEW_REASONS)
    assert len(whys) == 8 and whys <= set(CANDIDATE_WHY)


async def test_the_console_consumes_review_requests_from_the_real_broker(desk, db):
    task = await issue(db, kind="review", reason="name_mismatch")
    delivery = review_requested(task)
    consumers = Consumers(desk, "console")
    consumers.include(handlers.subscriptions, db)
    connection = await aio_pika.connect(desk.amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await (await channel.get_queue(queue_name("console", ev.EligibilityReviewRequested))).purge()
        await consumers.start()
        await publish_envelopes(channel, [delivery.envelope] * 2, ev.EligibilityReviewRequested.routing_key)
        for _ in range(200):
            async with db() as conn:
                found = await conn.scalar(
                    select(reviews.c.reason).where(reviews.c.consultation_id == task.consultation_id))
            if found:
                break
            await asyncio.sleep(0.05)
    finally:
        await consumers.stop()
        await connection.close()
    assert found == "member_unknown"

