"""The phone line in the console, on real Postgres: the form publishes consultation.submitted.v1
through the outbox with a body intake's own rules accept, and a status code intake's hash
accepts; the page waits for intake's answer, then shows the receipt number and the code (to the
operator who entered it, for ten minutes at most), or intake's refusals beside the fields with
what was typed."""
import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from starlette.datastructures import FormData

from services.console import handlers, web
from services.console.accounts import add_operator
from services.console.orm import outbox, phone_submissions
from services.console.phone_entry import purge
from services.console.status_codes import ALPHABET, code_hash, new_status_code
from services.intake import forms, receipts
from services.intake.web import form_payload
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery
from tests.console_support import Clock, browser, csrf_token

PASSWORD = "correct horse battery"
TYPED = {
    "name": "電話 花子", "name_kana": "でんわ はなこ", "role": "medical_staff", "member_no": "",
    "institution_name": "見本クリニック", "institution_prefecture": "東京都", "manager_member_no": "m-0001",
    "contact_method": "phone", "phone": "03-1234-5678", "email": "", "preferred_time": "morning",
    "category": "both", "summary": "待合室で怒鳴られた。\r\n口コミにも書かれた。",
    "urls": "https://www.google.com/maps/place/x/@35.6,139.7,17z/data=!4m8!3m7!1s0x0:0x1!9m1!1b1\r\n\r\n",
    "urgent": "yes", "consent": "yes",
}


@pytest.fixture(scope="module")
async def db(desk):
    engine = make_engine(desk, pool_size=2)
    sessions = make_sessions(engine)
    await add_operator(sessions, "phone-1", "電話 担当", PASSWORD)
    await add_operator(sessions, "phone-2", "別の 担当", PASSWORD)
    yield sessions
    await engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(desk, db, clock) -> FastAPI:
    app = FastAPI()
    web.install(app, db, desk, clock=clock)
    return app


@pytest.fixture
async def client(app):
    async with browser(app) as http:
        await log_in(http, "phone-1")
        yield http


async def log_in(http: httpx.AsyncClient, login: str) -> None:
    form = await http.get("/login")
    assert (await http.post("/login", data={"login": login, "password": PASSWORD,
                                            "csrf_token": csrf_token(form)})).status_code == 303


async def enter(client: httpx.AsyncClient, typed: dict) -> tuple[uuid.UUID, httpx.Response]:
    form = await client.get("/phone")
    assert form.status_code == 200 and 'name="consent"' in form.text
    submission_id = re.search(r'name="submission_id" value="([^"]+)"', form.text).group(1)
    sent = await client.post("/phone", data=typed | {"csrf_token": csrf_token(form), "submission_id": submission_id})
    assert sent.status_code == 303 and sent.headers["location"] == f"/phone/{submission_id}"
    return uuid.UUID(submission_id), sent


async def submitted(db, submission_id: uuid.UUID) -> list[ev.ConsultationSubmitted]:
    async with db() as conn:
        bodies = (await conn.scalars(select(outbox.c.body).where(
            outbox.c.correlation_id == submission_id,
            outbox.c.routing_key == ev.ConsultationSubmitted.routing_key))).all()
    return [ev.ConsultationSubmitted.model_validate(ev.Envelope.model_validate_json(b).data) for b in bodies]


async def answer(db, event: ev.Event, correlation_id: uuid.UUID) -> None:
    """intake's answer, delivered to the console's handler."""
    delivery = Delivery(ev.wrap(event, correlation_id), event)
    handler = (handlers.submission_accepted if isinstance(event, ev.ConsultationSubmissionAccepted)
               else handlers.submission_refused)
    await handler([delivery], db)


async def refuse_as_intake(db, event: ev.ConsultationSubmitted) -> list[dict]:
    """intake's refusal of this submission, by intake's own rules, delivered to the console; its
    problems."""
    with pytest.raises(forms.Rejected) as refused:
        forms.parse(event.form)
    await answer(db, ev.ConsultationSubmissionRefused(
        submission_id=event.submission_id, operator_id=event.operator_id,
        errors=[ev.SubmissionProblem(**e) for e in refused.value.errors]), event.submission_id)
    return refused.value.errors


async def stored_code(db, submission_id: uuid.UUID) -> str | None:
    async with db() as conn:
        return await conn.scalar(select(phone_submissions.c.status_code)
                                 .where(phone_submissions.c.submission_id == submission_id))


def test_a_status_code_made_by_the_console_is_one_intake_accepts():
    for _ in range(200):
        code = new_status_code()
        assert re.fullmatch(f"[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}", code)
        stored = bytes.fromhex(code_hash(code))
        assert stored == receipts.hash_token(code)
        assert receipts.token_matches(code, stored) and receipts.token_matches(code.lower().replace("-", " "), stored)
    assert not receipts.token_matches(new_status_code(), bytes.fromhex(code_hash(new_status_code())))


async def test_a_phone_consultation_is_published_and_its_receipt_and_code_shown_once_answered(client, db, clock):
    submission_id, _ = await enter(client, TYPED)
    (event,) = await submitted(db, submission_id)
    assert (event.channel, event.submitted_at) == ("phone", clock.now) and event.operator_id.startswith("op-")
    assert event.form == form_payload(FormData(TYPED))  # the web form's own shape
    parsed = forms.parse(event.form)  # and intake's rules take it
    assert parsed.institution.manager_member_no == "M-0001" and parsed.urgent and len(parsed.urls) == 1

    waiting = await client.get(f"/phone/{submission_id}")
    assert "確認中です" in waiting.text and '<meta http-equiv="refresh" content="1">' in waiting.text

    await answer(db, ev.ConsultationSubmissionAccepted(
        submission_id=submission_id, operator_id=event.operator_id, consultation_id=uuid.uuid4(),
        receipt_no="PH-261130-00017", contact_expected_from=datetime(2026, 12, 1).date()), uuid.uuid4())
    shown = await client.get(f"/phone/{submission_id}")
    code = re.search(r'id="status-code">([^<]+)<', shown.text).group(1)
    assert "PH-261130-00017" in shown.text and "2026年12月1日（火）" in shown.text and "refresh" not in shown.text
    assert receipts.token_matches(code, bytes.fromhex(event.status_token_hash))  # the code sent is the code shown
    clock.advance(minutes=9)
    assert code in (await client.get(f"/phone/{submission_id}")).text  # "could you say it again?"
    read_out = await client.post(f"/phone/{submission_id}/read-out", data={"csrf_token": csrf_token(shown)})
    assert read_out.status_code == 303
    after = await client.get(f"/phone/{submission_id}")
    assert code not in after.text and 'id="code-gone"' in after.text and "PH-261130-00017" in after.text
    assert await stored_code(db, submission_id) is None


async def test_a_double_post_of_the_form_is_one_submission(client, db):
    form = await client.get("/phone")
    fields = TYPED | {"csrf_token": csrf_token(form),
                      "submission_id": re.search(r'name="submission_id" value="([^"]+)"', form.text).group(1)}
    first, second = await client.post("/phone", data=fields), await client.post("/phone", data=fields)
    assert first.headers["location"] == second.headers["location"]
    assert len(await submitted(db, uuid.UUID(fields["submission_id"]))) == 1


async def test_a_refused_submission_shows_intake_s_reasons_beside_the_fields_with_what_was_typed(client, db):
    typed = TYPED | {"name_kana": "Denwa", "phone": "", "urls": "https://www.google.com/search?q=clinic"}
    submission_id, _ = await enter(client, typed)
    (event,) = await submitted(db, submission_id)
    await refuse_as_intake(db, event)
    page = await client.get(f"/phone/{submission_id}")
    assert page.status_code == 200 and 'id="error-summary"' in page.text
    for input_name in ("name_kana", "phone", "urls"):
        assert f'id="f-{input_name}-error"' in page.text and f'href="#f-{input_name}"' in page.text
    assert 'aria-invalid="true"' in page.text and "ふりがなはひらがなまたはカタカナで入力してください" in page.text
    assert 'value="Denwa"' in page.text and 'value="見本クリニック"' in page.text and "待合室で怒鳴られた" in page.text
    assert f'value="{submission_id}"' not in page.text  # sending again is a new submission
    assert await stored_code(db, submission_id) is None  # a refused submission's code is never used


async def test_the_code_is_for_the_operator_who_entered_it_and_for_ten_minutes(app, client, db, clock):
    submission_id, _ = await enter(client, TYPED)
    (event,) = await submitted(db, submission_id)
    await answer(db, ev.ConsultationSubmissionAccepted(
        submission_id=submission_id, operator_id=event.operator_id, consultation_id=uuid.uuid4(),
        receipt_no="PH-261130-00025", contact_expected_from=datetime(2026, 12, 1).date()), uuid.uuid4())
    async with browser(app) as other:
        await log_in(other, "phone-2")
        assert (await other.get(f"/phone/{submission_id}")).status_code == 404
    assert 'id="status-code"' in (await client.get(f"/phone/{submission_id}")).text
    clock.advance(minutes=10, seconds=1)
    expired = await client.get(f"/phone/{submission_id}")
    assert 'id="status-code"' not in expired.text and "PH-261130-00025" in expired.text
    assert await stored_code(db, submission_id) is None


async def test_the_purge_erases_codes_and_forgets_entries_a_day_after_the_answer(desk, client, db, clock):
    shown_id, _ = await enter(client, TYPED)
    unanswered_id, _ = await enter(client, TYPED)
    (event,) = await submitted(db, shown_id)
    await answer(db, ev.ConsultationSubmissionAccepted(
        submission_id=shown_id, operator_id=event.operator_id, consultation_id=uuid.uuid4(),
        receipt_no="PH-261130-00033", contact_expected_from=datetime(2026, 12, 1).date()), uuid.uuid4())
    await client.get(f"/phone/{shown_id}")  # shown now
    await purge(db, clock.now + timedelta(minutes=9), desk)
    assert await stored_code(db, shown_id) is not None
    await purge(db, clock.now + timedelta(minutes=11), desk)
    assert await stored_code(db, shown_id) is None and await stored_code(db, unanswered_id) is not None
    await purge(db, datetime.now(timezone.utc) + timedelta(hours=25), desk)
    async with db() as conn:
        left = set(await conn.scalars(select(phone_submissions.c.submission_id).where(
            phone_submissions.c.submission_id.in_([shown_id, unanswered_id]))))
    assert left == set()
