"""A submission sent again with the same Idempotency-Key, on the real database: the same receipt,
status code included, however many arrive at once; another form under the key is refused and
changes nothing; a key older than a day is a new one; a key that is not printable ASCII is refused."""
import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from services.intake import idempotency, main as intake_main
from services.intake.consultations import Submissions
from services.intake.forms import parse
from services.intake.orm import submission_keys
from tests.integration.test_intake import SUBMISSION, counts, intake  # noqa: F401 (fixture)


@pytest.fixture
async def desk_api(intake):  # noqa: F811
    client, sessions = intake
    async with sessions.begin() as s:
        await s.execute(text("delete from intake.submission_keys"))
    return client, sessions


def keyed(key: str) -> dict:
    return {"Idempotency-Key": key}


async def test_a_repeat_gets_the_same_receipt_with_its_status_code(desk_api):
    client, sessions = desk_api
    key = str(uuid.uuid4())
    first = await client.post("/api/v1/consultations", json=SUBMISSION, headers=keyed(key))
    # the browser's or the client's retry: the same form, typed with other spaces
    again = await client.post("/api/v1/consultations", headers=keyed(key),
                              json=dict(SUBMISSION, summary=f"  {SUBMISSION['summary']}  "))
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    status = await client.get(f"/api/v1/consultations/{first.json()['receipt_no']}",
                              headers={"X-Status-Token": again.json()["status_token"]})
    assert status.status_code == 200
    assert await counts(sessions) == (1, 1)
    async with sessions() as s:  # neither the key nor the status code is kept in clear
        row = (await s.execute(select(submission_keys))).one()
    assert key.encode() not in row.key_hash and first.json()["status_token"].encode() not in row.sealed_status_token
    other = await client.post("/api/v1/consultations", json=SUBMISSION, headers=keyed(str(uuid.uuid4())))
    assert other.json()["receipt_no"] != first.json()["receipt_no"]


async def test_ten_repeats_at_once_on_two_instances_make_one_consultation(desk_api, desk):
    client, sessions = desk_api
    other_app = FastAPI()
    other_app.include_router(intake_main.routes(sessions, desk))
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url="http://intake") as other:
        answers = await asyncio.gather(*(c.post("/api/v1/consultations", json=SUBMISSION, headers=keyed(key))
                                         for c in [client, other] * 5))
    assert [a.status_code for a in answers] == [202] * 10
    assert len({(a.json()["receipt_no"], a.json()["status_token"], a.json()["consultation_id"])
                for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 9
    assert await counts(sessions) == (1, 1)  # one consultation, one `received` in the outbox


async def test_the_same_key_with_another_form_is_refused_and_changes_nothing(desk_api):
    client, sessions = desk_api
    key = str(uuid.uuid4())
    first = await client.post("/api/v1/consultations", json=SUBMISSION, headers=keyed(key))
    changed = await client.post("/api/v1/consultations", json=dict(SUBMISSION, summary="別の内容です。"),
                                headers=keyed(key))
    assert changed.status_code == 422
    assert changed.json()["code"] == "idempotency_key_reused"
    assert changed.json()["errors"][0]["field"] == "Idempotency-Key"
    assert first.json()["receipt_no"] not in changed.text and first.json()["status_token"] not in changed.text
    assert await counts(sessions) == (1, 1)


async def test_a_key_older_than_a_day_is_a_new_one(desk_api):
    client, sessions = desk_api
    key = str(uuid.uuid4())
    first = (await client.post("/api/v1/consultations", json=SUBMISSION, headers=keyed(key))).json()
    async with sessions.begin() as s:
        await s.execute(update(submission_keys).values(
            created_at=submission_keys.c.created_at - text("interval '25 hours'")))
    later = await client.post("/api/v1/consultations", json=SUBMISSION, headers=keyed(key))
    assert later.status_code == 202 and "idempotent-replayed" not in later.headers
    assert later.json()["receipt_no"] != first["receipt_no"]
    again = await client.post("/api/v1/consultations", json=SUBMISSION, headers=keyed(key))
    assert again.json() == later.json()  # the key now stands for the new receipt, for a day
    assert await counts(sessions) == (2, 2)


@pytest.mark.parametrize("key", ["", " ", "x" * 201, "tab\there", "キー".encode(), b"caf\xe9"],
                         ids=["empty", "blank", "too_long", "control", "not_ascii", "latin1"])
async def test_a_key_that_is_not_1_to_200_printable_ascii_characters_is_refused(desk_api, key):
    client, sessions = desk_api
    answer = await client.post("/api/v1/consultations", json=SUBMISSION, headers=keyed(key))
    assert answer.status_code == 422 and answer.json()["code"] == "idempotency_key_format"
    assert await counts(sessions) == (0, 0)


async def test_the_web_forms_submission_id_gives_the_same_receipt_and_expired_keys_are_forgotten(desk_api):
    """The use case web.py calls with the form's hidden submission id; the clean-up is bounded."""
    _, sessions = desk_api
    submissions, form, submission_id = Submissions(sessions), parse(SUBMISSION), str(uuid.uuid4())
    first = await submissions.submit(form, "web", submission_key=submission_id)
    again = await submissions.submit(form, "web", submission_key=submission_id)
    assert (again.receipt_no, again.status_token, again.repeated) == (first.receipt_no, first.status_token, True)
    for _ in range(3):
        await submissions.submit(form, "web", submission_key=str(uuid.uuid4()))
    async with sessions.begin() as s:
        await s.execute(update(submission_keys).where(submission_keys.c.consultation_id != first.consultation_id)
                        .values(created_at=submission_keys.c.created_at - text("interval '25 hours'")))
        assert await idempotency.forget_expired(s, first.received_at) == 3
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(submission_keys)) == 1
    assert (await submissions.submit(form, "web", submission_key=submission_id)).receipt_no == first.receipt_no
