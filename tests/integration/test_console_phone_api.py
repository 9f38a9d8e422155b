"""The phone line on the console's JSON API, on real Postgres: a session and its CSRF token or
nothing; a body the console cannot take is refused field by field in Japanese with nothing
published; a consultation goes out once through the outbox as consultation.submitted.v1, in the
shape the phone page publishes, however often a client sends it again; intake's answer (accepted
with the receipt number and status code, or refused with its reasons) is read back by the
operator who entered it."""
import asyncio
import json
import re
import uuid
from contextlib import aclosing
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select
from starlette.datastructures import FormData

from services.console.accounts import add_operator
from services.console.orm import phone_submissions
from services.intake import forms, receipts
from services.intake.web import form_payload
from shared import events as ev
from shared.db import make_engine, make_sessions
from tests.console_support import browser
from tests.integration.test_console_actions import api_client
from tests.integration.test_console_phone import PASSWORD, TYPED, answer, refuse_as_intake, stored_code, submitted
from tests.integration.test_console_phone import app, clock  # noqa: F401 (fixtures)

JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
PHONE_API = "/api/v1/phone-consultations"
# TYPED (the phone page's fields) as the JSON API takes them
BODY = {
    "consultant": {"name": "電話 花子", "name_kana": "でんわ はなこ", "role": "medical_staff", "member_no": ""},
    "institution": {"name": "見本クリニック", "prefecture": "東京都", "manager_member_no": "m-0001"},
    "contact": {"method": "phone", "phone": "03-1234-5678", "email": None},
    "preferred_time": "morning", "category": "both", "summary": "待合室で怒鳴られた。\r\n口コミにも書かれた。",
    "urls": ["https://www.google.com/maps/place/x/@35.6,139.7,17z/data=!4m8!3m7!1s0x0:0x1!9m1!1b1", ""],
    "urgent": True, "consent": True,
}


@pytest.fixture(scope="module")
async def db(desk):  # the phone page's app and clock, on this module's operators
    engine = make_engine(desk, pool_size=4)
    sessions = make_sessions(engine)
    for login, name in (("phone-api-1", "電話 担当"), ("phone-api-2", "別の 担当")):
        await add_operator(sessions, login, name, PASSWORD)
    yield sessions
    await engine.dispose()


@pytest.fixture
async def client(app):
    async with aclosing(await api_client(app, "phone-api-1")) as http:
        yield http


async def entries(db, submission_id: uuid.UUID) -> int:
    async with db() as conn:
        return await conn.scalar(select(func.count()).select_from(phone_submissions)
                                 .where(phone_submissions.c.submission_id == submission_id))


async def nothing_sent(db, submission_id: uuid.UUID) -> bool:
    return await submitted(db, submission_id) == [] and await entries(db, submission_id) == 0


async def enter(client: httpx.AsyncClient, body: dict) -> uuid.UUID:
    sent = await client.post(PHONE_API, json=body)
    assert sent.status_code == 202, sent.text
    submission_id = uuid.UUID(sent.json()["submission_id"])
    assert sent.json() == {"submission_id": str(submission_id), "status": "pending",
                           "links": {"status": f"{PHONE_API}/{submission_id}"}}
    assert sent.headers["location"] == f"{PHONE_API}/{submission_id}" and sent.headers["cache-control"] == "no-store"
    return submission_id


async def test_without_a_session_or_its_csrf_token_nothing_is_sent(app, client, db):
    submission_id = uuid.uuid4()
    async with browser(app) as stranger:
        refused = await stranger.post(PHONE_API, json=BODY | {"submission_id": str(submission_id)})
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
        assert (await stranger.get(f"{PHONE_API}/{submission_id}")).status_code == 401
    without_token = await client.post(PHONE_API, json=BODY | {"submission_id": str(submission_id)},
                                      headers={"X-CSRF-Token": ""})
    assert without_token.status_code == 403 and without_token.json()["code"] == "csrf_failed"
    assert JAPANESE.search(without_token.json()["detail"])
    assert await nothing_sent(db, submission_id)


async def test_a_body_the_console_cannot_take_is_refused_field_by_field_in_japanese(client, db):
    submission_id = uuid.uuid4()
    consultant = BODY["consultant"] | {"role": "doctor", "name": 7}
    body = BODY | {"submission_id": str(submission_id), "consultant": consultant, "urgent": "maybe",
                   "institution_name": "見本クリニック", "summary": "あ" * 8001,
                   "urls": ["https://example.com/" + "a" * 1000] * 8}
    del body["contact"]
    refused = await client.post(PHONE_API, json=body)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_request"
    problems = {p["field"]: p for p in refused.json()["problems"]}
    assert {field: p["code"] for field, p in problems.items()} == {
        "consultant.name": "string_type", "consultant.role": "literal_error", "contact": "missing",
        "urgent": "bool_parsing", "institution_name": "extra_forbidden", "summary": "string_too_long",
        "urls": "too_long"}
    assert problems["consultant.role"]["message"].startswith("ご相談者の区分：決められた値のどれか")
    assert problems["summary"]["message"] == "ご相談の内容：8000文字以内にしてください。"
    assert problems["urls"]["message"] == "投稿のURL：合わせて8000文字以内にしてください。"
    assert all(JAPANESE.search(p["message"]) for p in problems.values()) and JAPANESE.search(refused.json()["detail"])
    assert await nothing_sent(db, submission_id)

    for unreadable in ({"content": b'{"consultant": '}, {"data": {"summary": "x"}}):  # not JSON; a form
        reply = await client.post(PHONE_API, **unreadable)
        assert reply.status_code == 422 and reply.json()["problems"][0]["field"] == "body", reply.text
    bad_id = await client.get(f"{PHONE_API}/not-a-uuid")
    assert bad_id.status_code == 422 and bad_id.json()["problems"][0]["field"] == "submission_id"


@pytest.mark.parametrize("name, status, code", [("電話\x00花子", 400, "invalid_characters"),
                                                ("電話\x1b[31m", 400, "invalid_characters"),
                                                ("電話\ud800", 422, "invalid_request")])  # no text: no database takes it
async def test_a_control_character_or_a_lone_surrogate_is_refused_cleanly_and_nothing_sent(client, db, name, status,
                                                                                          code):
    submission_id = uuid.uuid4()
    body = BODY | {"submission_id": str(submission_id), "consultant": BODY["consultant"] | {"name": name}}
    refused = await client.post(PHONE_API, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert (refused.status_code, refused.json()["code"]) == (status, code) and JAPANESE.search(refused.text)
    assert await nothing_sent(db, submission_id)


async def test_a_consultation_is_published_once_in_the_shape_the_phone_page_publishes(client, db, clock):
    submission_id = await enter(client, BODY)
    (event,) = await submitted(db, submission_id)
    assert (event.channel, event.submitted_at) == ("phone", clock.now) and event.operator_id.startswith("op-")
    assert event.form == form_payload(FormData(TYPED))  # what the page sends for the same call
    assert forms.parse(event.form).institution.manager_member_no == "M-0001"  # and intake's rules take it
    pending = await client.get(f"{PHONE_API}/{submission_id}")
    assert pending.status_code == 200 and pending.headers["cache-control"] == "no-store"
    assert pending.json() | {"submitted_at": None} == {
        "submission_id": str(submission_id), "status": "pending", "submitted_at": None, "receipt_no": None,
        "consultation_id": None, "contact_expected_from": None, "contact_may_take_longer": None,
        "status_token": None, "status_token_until": None, "problems": []}


async def test_a_client_sending_again_even_at_once_gets_one_submission_and_other_contents_a_409(client, db):
    submission_id = uuid.uuid4()
    body = BODY | {"submission_id": str(submission_id)}
    assert await enter(client, body) == submission_id
    assert await enter(client, body) == submission_id
    assert len(await submitted(db, submission_id)) == 1

    at_once = uuid.uuid4()
    answers = await asyncio.gather(*(client.post(PHONE_API, json=BODY | {"submission_id": str(at_once)})
                                     for _ in range(4)))
    assert [a.status_code for a in answers] == [202] * 4 and {a.json()["submission_id"] for a in answers} == {
        str(at_once)}
    assert len(await submitted(db, at_once)) == 1

    corrected = await client.post(PHONE_API, json=body | {"summary": "別の内容"})
    assert corrected.status_code == 409 and corrected.json()["code"] == "conflict"
    assert "submission_id" in corrected.json()["detail"] and JAPANESE.search(corrected.json()["detail"])
    assert len(await submitted(db, submission_id)) == 1


async def test_another_operator_s_id_is_never_reused(app, client, db):
    mine = await enter(client, BODY)
    async with aclosing(await api_client(app, "phone-api-2")) as other:
        theirs = await enter(other, BODY | {"submission_id": str(mine)})
    assert theirs != mine and len(await submitted(db, mine)) == 1 and len(await submitted(db, theirs)) == 1


async def test_accepted_the_receipt_number_and_status_code_are_read_back_by_the_operator_who_entered_it(
        app, client, db):
    submission_id = await enter(client, BODY)
    (event,) = await submitted(db, submission_id)
    consultation_id = uuid.uuid4()
    await answer(db, ev.ConsultationSubmissionAccepted(
        submission_id=submission_id, operator_id=event.operator_id, consultation_id=consultation_id,
        receipt_no="PH-261130-00041", contact_expected_from=date(2026, 12, 1), contact_may_take_longer=True),
        consultation_id)
    accepted = (await client.get(f"{PHONE_API}/{submission_id}")).json()
    assert (accepted["status"], accepted["receipt_no"], accepted["consultation_id"]) == (
        "accepted", "PH-261130-00041", str(consultation_id))
    assert (accepted["contact_expected_from"], accepted["contact_may_take_longer"], accepted["problems"]) == (
        "2026-12-01", True, [])
    assert receipts.token_matches(accepted["status_token"], bytes.fromhex(event.status_token_hash))
    assert accepted["status_token_until"] is not None

    async with aclosing(await api_client(app, "phone-api-2")) as other:
        assert (await other.get(f"{PHONE_API}/{submission_id}")).status_code == 404  # the caller's secret
        assert (await other.delete(f"{PHONE_API}/{submission_id}/status-token")).status_code == 204
    assert await stored_code(db, submission_id) is not None  # not theirs to erase
    assert (await client.delete(f"{PHONE_API}/{submission_id}/status-token")).status_code == 204
    read_out = (await client.get(f"{PHONE_API}/{submission_id}")).json()
    assert (read_out["status"], read_out["receipt_no"], read_out["status_token"]) == (
        "accepted", "PH-261130-00041", None)
    assert await stored_code(db, submission_id) is None


async def test_refused_intake_s_reasons_come_back_field_by_field(client, db):
    body = BODY | {"consultant": BODY["consultant"] | {"name_kana": "Denwa"}, "contact": {"method": "phone"},
                   "urls": ["https://www.google.com/search?q=clinic"]}
    submission_id = await enter(client, body)
    (event,) = await submitted(db, submission_id)
    problems = await refuse_as_intake(db, event)  # what intake answers, by its own rules
    refused = (await client.get(f"{PHONE_API}/{submission_id}")).json()
    assert (refused["status"], refused["receipt_no"], refused["status_token"]) == ("refused", None, None)
    assert refused["problems"] == problems
    assert {p["field"] for p in refused["problems"]} >= {"consultant.name_kana", "contact.phone", "urls"}
    assert "ふりがなはひらがなまたはカタカナで入力してください" in {p["message"] for p in refused["problems"]}
    assert await stored_code(db, submission_id) is None

    corrected = await enter(client, BODY)  # corrected, the call goes on as a new submission
    assert corrected != submission_id and len(await submitted(db, corrected)) == 1


async def test_an_unknown_entry_is_404_in_japanese(client):
    unknown = await client.get(f"{PHONE_API}/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert JAPANESE.search(unknown.json()["detail"])
