"""The e-mails the notifier sent, in a consultation's history, on the real broker and Postgres:
notification.email_sent.v1 published twice (a redelivery) and the same e-mail announced again in
a new event keep one row, with the event's time; the task page lists each e-mail by its Japanese
name on the Japan clock, a booked call's attempt from the second on."""
import asyncio
import re
import uuid
from contextlib import aclosing
from datetime import datetime, timezone

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.console import handlers, web
from services.console.accounts import add_operator
from services.console.emails_sent import EMAIL_LABELS, email_label
from services.console.orm import emails_sent
from services.console.tasks import record_tasks
from services.notifier import acknowledging, booked, declining, fallback
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Consumers, Delivery
from shared.topology import queue_name
from tests.console_support import browser, csrf_token
from tests.support import publish_envelopes

PASSWORD = "correct horse battery"
LOGIN = "mail-op"


@pytest.fixture(scope="module")
async def db(desk):
    engine = make_engine(desk, pool_size=4)
    sessions = make_sessions(engine)
    await add_operator(sessions, LOGIN, "送信 確認", PASSWORD)
    yield sessions
    await engine.dispose()


async def issued(db, name: str, contact: ev.Contact) -> ev.TaskIssued:
    task = ev.TaskIssued(
        task_id=uuid.uuid4(), consultation_id=uuid.uuid4(), receipt_no=f"PH-261202-{uuid.uuid4().int % 10**5:05d}",
        kind="call", booking_id=uuid.uuid4(), consultant_name=name, contact=contact, category="in_person",
        summary="待合室で怒鳴られた")
    assert await record_tasks([Delivery(ev.wrap(task, task.consultation_id), task)], db) == 1
    return task


async def task_page(desk, db, task: ev.TaskIssued) -> httpx.Response:
    app = FastAPI()
    web.install(app, db, desk)
    async with aclosing(browser(app)) as client:
        form = await client.get("/login")
        assert (await client.post("/login", data={"login": LOGIN, "password": PASSWORD,
                                                  "csrf_token": csrf_token(form)})).status_code == 303
        page = await client.get(f"/tasks/{task.task_id}")
    assert page.status_code == 200
    return page


def sent(consultation: ev.TaskIssued, kind: str, attempt: int, at: datetime) -> ev.Envelope:
    """The notifier's event for one e-mail, as its outbox wraps it, at `at`."""
    event = ev.EmailSent(consultation_id=consultation.consultation_id, receipt_no=consultation.receipt_no, kind=kind,
                         message_id=f"<{kind}.{consultation.consultation_id}.{attempt}@payhara.test>", attempt=attempt)
    return ev.wrap(event, consultation.consultation_id).model_copy(update={"occurred_at": at})


async def consumed(desk, db, envelopes: list[ev.Envelope], last: ev.Envelope) -> None:
    """Publish `envelopes` then `last` to the console's queue and wait until `last` is applied
    (one consumer takes the queue in order: everything before it is applied too)."""
    consumers = Consumers(desk, "console")
    consumers.include(handlers.subscriptions, db)
    connection = await aio_pika.connect(desk.amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await (await channel.get_queue(queue_name("console", ev.EmailSent))).purge()
        await consumers.start()
        await publish_envelopes(channel, [*envelopes, last], ev.EmailSent.routing_key)
        for _ in range(200):
            async with db() as conn:
                if await conn.scalar(select(func.count()).select_from(emails_sent).where(
                        emails_sent.c.consultation_id == last.correlation_id,
                        emails_sent.c.attempt == last.data["attempt"])):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("the console did not apply the last e-mail within 10 s")
    finally:
        await consumers.stop()
        await connection.close()


async def test_each_e_mail_is_kept_once_and_listed_on_the_task_page(desk, db):
    task = await issued(db, "送信 花子", ev.Contact(method="email", email="h@example.jp"))
    receipt = sent(task, "acknowledgement", 1, datetime(2026, 12, 2, 1, 1, tzinfo=timezone.utc))
    announced_again = sent(task, "acknowledgement", 1, datetime(2026, 12, 2, 1, 7, tzinfo=timezone.utc))
    first_call = sent(task, "callback_booked", 1, datetime(2026, 12, 2, 1, 2, tzinfo=timezone.utc))
    second_call = sent(task, "callback_booked", 2, datetime(2026, 12, 3, 6, 30, tzinfo=timezone.utc))
    await consumed(desk, db, [receipt, receipt, announced_again, first_call], last=second_call)

    async with db() as conn:
        rows = (await conn.execute(select(emails_sent.c.kind, emails_sent.c.attempt, emails_sent.c.sent_at).where(
            emails_sent.c.consultation_id == task.consultation_id).order_by(emails_sent.c.sent_at))).all()
    assert [tuple(row) for row in rows] == [
        ("acknowledgement", 1, receipt.occurred_at), ("callback_booked", 1, first_call.occurred_at),
        ("callback_booked", 2, second_call.occurred_at)]

    page = await task_page(desk, db, task)
    listed = re.search(r'<h3>相談者に送ったメール</h3>\s*<ul id="history-emails">(.*?)</ul>', page.text, re.S)
    assert listed, "the e-mails are listed in the history"
    assert re.findall(r"<li>(.*?)</li>", listed.group(1)) == [  # Japan time: UTC+9
        "2026/12/02(水) 10:01 受付のお知らせ", "2026/12/02(水) 10:02 ご連絡予定のお知らせ",
        "2026/12/03(木) 15:30 ご連絡予定のお知らせ（2回目）"]


async def test_a_receipt_that_told_the_first_call_is_kept_under_both_kinds(desk, db):
    task = await issued(db, "同報 三郎", ev.Contact(method="phone", phone="0312345678", email="s@example.jp"))
    event = ev.EmailSent(consultation_id=task.consultation_id, receipt_no=task.receipt_no, kind="acknowledgement",
                         message_id=f"<acknowledgement.{task.consultation_id}@payhara.test>",
                         also_told=["callback_booked"])
    receipt = ev.wrap(event, task.consultation_id).model_copy(
        update={"occurred_at": datetime(2026, 12, 2, 1, 1, tzinfo=timezone.utc)})
    await handlers.email_sent([Delivery(receipt, event)], db)
    await handlers.email_sent([Delivery(receipt, event)], db)  # redelivered
    page = await task_page(desk, db, task)
    listed = re.search(r'<ul id="history-emails">(.*?)</ul>', page.text, re.S)
    assert re.findall(r"<li>(.*?)</li>", listed.group(1)) == [
        "2026/12/02(水) 10:01 受付のお知らせ", "2026/12/02(水) 10:01 ご連絡予定のお知らせ"]


async def test_a_consultation_without_e_mails_says_so(desk, db):
    task = await issued(db, "電話 次郎", ev.Contact(method="phone", phone="0312345678"))
    page = await task_page(desk, db, task)
    assert "送ったメールはありません。" in page.text and 'id="history-emails"' not in page.text


def test_every_kind_the_notifier_sends_has_a_japanese_name():
    kinds = {acknowledging.KIND, booked.KIND, declining.KIND, fallback.KIND}
    assert kinds == set(EMAIL_LABELS)
    assert email_label("rejection") == "対象外のお知らせ"
    assert email_label("callback_booked", 3) == "ご連絡予定のお知らせ（3回目）"
    assert email_label("newsletter") == "その他のメール（newsletter）"
