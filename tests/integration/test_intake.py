"""Intake over HTTP on the real database: a receipt exists only after its commit, with its
`received` event in the outbox; bad input changes nothing; a status needs its token."""
import asyncio
import re
import uuid
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from services.intake import main as intake_main, receipts
from services.intake.consultations import follow
from services.intake.orm import consultations, inbox, outbox
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.events import ConsultationReceived, Envelope
from shared.messaging import Delivery

SUBMISSION = {
    "consultant": {"name": "見本 花子", "name_kana": "みほん はなこ", "role": "member", "member_no": "M0001"},
    "institution": {"name": "架空クリニック", "prefecture": "東京都"},
    "contact": {"method": "email", "email": "hanako@example.com"},
    "category": "online",
    "summary": "口コミサイトに事実と異なる投稿をされました。",
    "urls": ["https://maps.example.com/review/1"],
    "consent": True,
}


async def post_form(client, path: str, fields: dict):
    """Post a page's form as a browser does: with the token of the form page it was shown on."""
    page = await client.get("/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return await client.post(path, data={**fields, "csrf_token": token})


@pytest.fixture
async def intake(desk):
    engine = make_engine(desk)
    sessions = make_sessions(engine)
    async with engine.begin() as conn:
        await conn.execute(text("truncate intake.consultations, intake.outbox, intake.inbox"))
    app = FastAPI()
    app.include_router(intake_main.routes(sessions, desk))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
        yield client, sessions
    await engine.dispose()


async def counts(sessions) -> tuple[int, int]:
    async with sessions() as s:
        return (await s.scalar(select(func.count()).select_from(consultations)),
                await s.scalar(select(func.count()).select_from(outbox)))


async def test_a_receipt_is_committed_with_its_received_event(intake):
    client, sessions = intake
    response = await client.post("/api/v1/consultations", json=SUBMISSION)
    assert response.status_code == 202
    receipt = response.json()
    assert set(receipt) == {"consultation_id", "receipt_no", "status_token", "contact_expected_from",
                           "contact_may_take_longer"}
    async with sessions() as s:
        row = (await s.execute(select(outbox))).one()
    envelope = Envelope.model_validate_json(row.body)
    event = ConsultationReceived.model_validate(envelope.data)
    assert row.routing_key == "consultation.received.v1" and row.sent_at is None
    assert str(envelope.correlation_id) == receipt["consultation_id"]
    assert event.receipt_no == receipt["receipt_no"]
    assert event.contact_expected_from.isoformat() == receipt["contact_expected_from"]


async def test_the_received_event_carries_each_post_normalised_with_its_platform(intake):
    client, sessions = intake
    urls = ["https://www.google.com/maps/place/X/@35.6,139.7,17z?utm_source=share",
            "https://x.com/someone/status/123?s=20", "https://x.com/someone/status/123", "https://caloo.jp/hospitals/detail/1"]
    response = await client.post("/api/v1/consultations", json={**SUBMISSION, "urls": urls})
    assert response.status_code == 202
    async with sessions() as s:
        body = await s.scalar(select(outbox.c.body))
    event = ConsultationReceived.model_validate(Envelope.model_validate_json(body).data)
    assert [(p.url, p.platform) for p in event.posts] == [
        ("https://www.google.com/maps/place/X/@35.6,139.7,17z", "google_maps"),
        ("https://x.com/someone/status/123", "x"), ("https://caloo.jp/hospitals/detail/1", "medical_review")]
    assert event.urls == [p.url for p in event.posts]


async def test_bad_input_gets_reasons_and_changes_nothing(intake):
    client, sessions = intake
    bad = dict(SUBMISSION, consent=False, contact={"method": "phone"})
    response = await client.post("/api/v1/consultations", json=bad)
    assert response.status_code == 422
    assert {e["code"] for e in response.json()["errors"]} == {"consent_required", "phone_required"}  # one round
    not_json = await client.post("/api/v1/consultations", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["code"] == "invalid_json"
    assert await counts(sessions) == (0, 0)


async def test_status_needs_the_right_token_and_says_nothing_otherwise(intake):
    client, _ = intake
    receipt = (await client.post("/api/v1/consultations", json=SUBMISSION)).json()
    url = f"/api/v1/consultations/{receipt['receipt_no']}"
    ok = await client.get(url, headers={"X-Status-Token": receipt["status_token"]})
    assert ok.status_code == 200
    assert ok.json()["status"] == "received" and ok.json()["slot"] is None
    wrong = await client.get(url, headers={"X-Status-Token": "guess"})
    missing = await client.get(url)
    unknown = await client.get("/api/v1/consultations/PH-261124-99999", headers={"X-Status-Token": "guess"})
    assert wrong.status_code == missing.status_code == unknown.status_code == 404
    assert wrong.json() == missing.json() == unknown.json()


async def test_the_web_form_shows_a_receipt_or_the_reasons(intake):
    client, sessions = intake
    page = await client.get("/")
    assert page.status_code == 200 and "ご相談の受付" in page.text
    refused = await post_form(client, "/consultations", {"name": "見本 花子", "name_kana": "Hanako"})
    assert refused.status_code == 422 and "ひらがなまたはカタカナ" in refused.text
    assert await counts(sessions) == (0, 0)
    accepted = await post_form(client, "/consultations", {
        "name": "見本 花子", "name_kana": "みほん はなこ", "role": "member", "member_no": "M0001",
        "contact_method": "phone", "phone": "03-1234-5678", "category": "in_person",
        "summary": "待合室で大声で威圧されました。", "consent": "yes",
    })
    assert accepted.status_code == 200 and "ご相談を受け付けました" in accepted.text
    assert await counts(sessions) == (1, 1)


async def test_a_consultant_looks_up_the_status_in_a_browser(intake):
    client, _ = intake
    receipt = (await client.post("/api/v1/consultations", json=SUBMISSION)).json()
    form = await client.get("/status")
    assert form.status_code == 200 and 'name="status_token"' in form.text
    found = await post_form(client, "/status", {"receipt_no": receipt["receipt_no"].lower(),
                                               "status_token": receipt["status_token"]})
    assert found.status_code == 200 and "受付済み" in found.text and receipt["receipt_no"] in found.text
    refused = await post_form(client, "/status", {"receipt_no": receipt["receipt_no"], "status_token": "guess"})
    assert refused.status_code == 404 and "正しくありません" in refused.text and "受付済み" not in refused.text


async def test_status_events_in_batches_only_move_the_status_forward(intake):
    """Verdict and schedule events, redelivered and out of order, in batches: the status view
    moves forward only (a late `eligible` never undoes `scheduled`), each event counted once."""
    client, sessions = intake
    receipts = [(await client.post("/api/v1/consultations", json=SUBMISSION)).json() for _ in range(3)]
    ids = [uuid.UUID(r["consultation_id"]) for r in receipts]
    starts = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)

    def confirmed(cid):
        event = ev.EligibilityConfirmed(consultation_id=cid, receipt_no="-", reason="active_member",
                                        contact_expected_from=date(2026, 11, 25))
        return Delivery(ev.wrap(event, cid), event)

    def scheduled(cid):
        event = ev.CallbackScheduled(consultation_id=cid, receipt_no="-", booking_id=uuid.uuid4(),
                                     slot_starts_at=starts, slot_ends_at=starts + timedelta(minutes=30))
        return Delivery(ev.wrap(event, cid), event)

    late = confirmed(ids[0])
    slot = {"slot": lambda e: {"slot_starts_at": e.slot_starts_at, "slot_ends_at": e.slot_ends_at}}
    await follow([scheduled(ids[0])], "scheduled", sessions, "intake.scheduled", **slot)
    await follow([late, confirmed(ids[1]), late], "eligible", sessions, "intake.confirmed")
    await follow([confirmed(uuid.uuid4())], "eligible", sessions, "intake.confirmed")  # unknown: logged
    statuses = []
    for receipt in receipts:
        response = await client.get(f"/api/v1/consultations/{receipt['receipt_no']}",
                                    headers={"X-Status-Token": receipt["status_token"]})
        statuses.append((response.json()["status"], response.json()["slot"] is not None))
    assert statuses == [("scheduled", True), ("eligible", False), ("received", False)]
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(inbox)) == 4


async def test_two_instances_hand_out_distinct_receipt_numbers(intake, desk):
    """Each instance takes serials from the sequence a block at a time: never the same twice."""
    client, sessions = intake
    other_app = FastAPI()
    other_app.include_router(intake_main.routes(sessions, desk))  # a second instance, with its own block
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url="http://intake") as other:
        answers = await asyncio.gather(*(c.post("/api/v1/consultations", json=SUBMISSION)
                                         for c in [client, other] * 20))
    numbers = [a.json()["receipt_no"] for a in answers]
    assert len(set(numbers)) == 40
    assert all(receipts.is_well_formed(n) for n in numbers)
    async with sessions() as s:
        assert await s.scalar(select(func.count(func.distinct(consultations.c.receipt_no)))) == 40


async def test_a_busy_desk_promises_the_schedulers_first_free_day_and_says_so(intake):
    from services.intake.consultations import note_availability

    client, sessions = intake
    far, far_for_mail = date.today() + timedelta(days=40), date.today() + timedelta(days=20)
    now = datetime.now(timezone.utc)
    news = [Delivery(ev.wrap(e, uuid.uuid4()), e) for e in (
        ev.ScheduleAvailabilityChanged(first_free_day=far, busy=True, as_of=now, first_free_email_day=far_for_mail),
        ev.ScheduleAvailabilityChanged(first_free_day=date.today(), busy=False, as_of=now - timedelta(minutes=5)),
    )]
    await note_availability(news, sessions)  # the older word arrives in the same batch: ignored
    await note_availability(news[1:], sessions)  # and on its own, later: ignored too
    try:
        answer = (await client.post("/api/v1/consultations", json=SUBMISSION)).json()  # a reply by e-mail
        assert answer["contact_expected_from"] == far_for_mail.isoformat()
        assert answer["contact_may_take_longer"] is True
        by_phone = {**SUBMISSION, "contact": {"method": "phone", "phone": "03-1234-5678"}}
        answer = (await client.post("/api/v1/consultations", json=by_phone)).json()
        assert (answer["contact_expected_from"], answer["contact_may_take_longer"]) == (far.isoformat(), True)
        page = await post_form(client, "/consultations", {
            "name": "見本 花子", "name_kana": "みほん はなこ", "role": "member", "member_no": "M0001",
            "contact_method": "email", "email": "hanako@example.com", "category": "in_person",
            "summary": "受付で大声を出されました。", "consent": "yes"})
        assert "ご相談が集中しているため" in page.text
    finally:
        async with sessions.begin() as s:
            await s.execute(text("delete from intake.availability"))


async def test_a_later_call_attempt_moves_the_slot_and_an_exhausted_callback_says_how_to_reach_the_desk(intake):
    from services.intake.consultations import follow

    client, sessions = intake
    receipt = (await client.post("/api/v1/consultations", json=SUBMISSION)).json()
    cid = uuid.UUID(receipt["consultation_id"])
    start = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)

    def scheduled(attempt: int, hours: int) -> Delivery:
        event = ev.CallbackScheduled(consultation_id=cid, receipt_no=receipt["receipt_no"], booking_id=uuid.uuid4(),
                                     slot_starts_at=start + timedelta(hours=hours),
                                     slot_ends_at=start + timedelta(hours=hours, minutes=30), attempt=attempt)
        return Delivery(ev.wrap(event, cid), event)

    def slot_of(event):
        return {"slot_starts_at": event.slot_starts_at, "slot_ends_at": event.slot_ends_at}

    await follow([scheduled(2, 5)], "scheduled", sessions, "intake.scheduled", slot=slot_of)
    await follow([scheduled(1, 0)], "scheduled", sessions, "intake.scheduled", slot=slot_of)  # late, older
    status = await client.get(f"/api/v1/consultations/{receipt['receipt_no']}",
                              headers={"X-Status-Token": receipt["status_token"]})
    assert status.json()["slot"]["starts_at"] == (start + timedelta(hours=5)).isoformat()

    exhausted = ev.CallbackExhausted(consultation_id=cid, receipt_no=receipt["receipt_no"], booking_id=uuid.uuid4(),
                                     attempts=3, reason="no_answer_after_last_attempt")
    await follow([Delivery(ev.wrap(exhausted, cid), exhausted)], "unreachable", sessions, "intake.exhausted")
    page = await post_form(client, "/status", {"receipt_no": receipt["receipt_no"], "status_token": receipt["status_token"]})
    assert "つながりませんでした" in page.text and "desk-phone" in page.text


HALF_WIDTH_KANA, FULL_WIDTH_NO = "ﾐﾎﾝ\u3000ﾊﾅｺ", "Ｍ０００１"


async def stored(sessions, receipt_no: str):
    async with sessions() as s:
        row = (await s.execute(select(consultations).where(consultations.c.receipt_no == receipt_no))).one()
        body = await s.scalar(select(outbox.c.body).where(outbox.c.correlation_id == row.id))
    return row, ConsultationReceived.model_validate(Envelope.model_validate_json(body).data)


async def test_a_half_width_reading_and_a_full_width_member_number_are_taken_as_typed(intake):
    """What eligibility's matching folds itself, intake takes: the reading is stored and forwarded
    as typed, the member number half-width."""
    client, sessions = intake
    api_answer = await client.post("/api/v1/consultations", json=dict(SUBMISSION, consultant={
        "name": "見本 花子", "name_kana": f" {HALF_WIDTH_KANA}\u3000", "role": "member", "member_no": FULL_WIDTH_NO}))
    assert api_answer.status_code == 202
    form_answer = await post_form(client, "/consultations", {
        "name": "見本 花子", "name_kana": HALF_WIDTH_KANA, "role": "member", "member_no": FULL_WIDTH_NO,
        "contact_method": "phone", "phone": "03-1234-5678", "category": "in_person",
        "summary": "待合室で大声で威圧されました。", "consent": "yes"})
    assert form_answer.status_code == 200 and "ご相談を受け付けました" in form_answer.text
    form_receipt_no = form_answer.text.split('id="receipt-no">')[1].split("<")[0]
    for receipt_no in (api_answer.json()["receipt_no"], form_receipt_no):
        row, event = await stored(sessions, receipt_no)
        assert (row.consultant_name_kana, row.member_no) == (HALF_WIDTH_KANA, "M0001")
        assert (event.consultant.name_kana, event.consultant.member_no) == (HALF_WIDTH_KANA, "M0001")


async def test_a_reading_in_kanji_is_refused_and_the_form_comes_back_as_typed(intake):
    client, sessions = intake
    api_answer = await client.post("/api/v1/consultations", json=dict(SUBMISSION, consultant={
        "name": "見本 花子", "name_kana": "見本 花子", "role": "member", "member_no": "M0001"}))
    assert api_answer.status_code == 422
    assert api_answer.json()["errors"] == [{"field": "consultant.name_kana", "code": "kana_only",
                                            "message": "ふりがなはひらがなまたはカタカナで入力してください"}]
    page = await post_form(client, "/consultations", {
        "name": "見本 花子", "name_kana": "見本 花子", "role": "member", "member_no": FULL_WIDTH_NO,
        "contact_method": "phone", "phone": "03-1234-5678", "category": "in_person",
        "summary": "待合室で大声で威圧されました。", "consent": "yes"})
    assert page.status_code == 422
    summary = page.text.split('id="error-summary"')[1].split("</div>")[0]
    assert '<a href="#f-name_kana">ふりがなはひらがなまたはカタカナで入力してください</a>' in summary
    assert summary.count("<li>") == 1  # only what is wrong
    assert 'id="f-name_kana" name="name_kana" value="見本 花子"' in page.text
    assert f'name="member_no" value="{FULL_WIDTH_NO}"' in page.text  # as typed, to send again
    assert await counts(sessions) == (0, 0)


async def test_an_ineligible_receipt_explains_kindly_and_gives_the_desks_phone(intake, desk):
    client, sessions = intake
    receipt = (await client.post("/api/v1/consultations", json=SUBMISSION)).json()
    cid = uuid.UUID(receipt["consultation_id"])
    rejected = ev.EligibilityRejected(consultation_id=cid, receipt_no=receipt["receipt_no"], reason="withdrawn_member")
    await follow([Delivery(ev.wrap(rejected, cid), rejected)], "ineligible", sessions, "intake.rejected")
    page = await post_form(client, "/status", {"receipt_no": receipt["receipt_no"],
                                              "status_token": receipt["status_token"]})
    assert page.status_code == 200
    text = page.text
    assert desk.desk_phone in text and desk.desk_hours in text
    assert f'href="tel:{desk.desk_phone.replace("-", "")}"' in text
    assert "ありがとうございます" in text and "会員名簿で確認できた範囲では" in text and "誤り" in text
    assert "#9110" in text and "0570-003-110" in text
    assert "対象外" not in text
    assert "以降にご連絡します" not in text  # no contact is promised for a consultation not taken on
    api_answer = await client.get(f"/api/v1/consultations/{receipt['receipt_no']}",
                                  headers={"X-Status-Token": receipt["status_token"]})
    assert api_answer.json()["status"] == "ineligible" and api_answer.json()["status_label"] != "対象外"
