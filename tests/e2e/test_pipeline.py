"""One consultation, then a batch through a crash, from HTTP in to an e-mail and a task out,
with every service a real process on the real broker and database."""
import asyncio
import email
import email.policy
import time
from contextlib import asynccontextmanager

import httpx

from tests.support import OPERATOR, submission

@asynccontextmanager
async def operator_session(desk):
    async with httpx.AsyncClient(base_url=desk.url("console"), timeout=10) as client:
        response = await client.post("/login", data={"login": OPERATOR[0], "password": OPERATOR[1]})
        assert response.status_code in (200, 303), response.text
        yield client


def acknowledgements(desk) -> dict[str, int]:
    """consultation id -> how many acknowledgement e-mails reached the SMTP sink."""
    found: dict[str, int] = {}
    for path in desk.mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        message_id = str(message["Message-ID"]).strip()
        if message_id.startswith("<acknowledgement."):
            consultation = message_id.split(".", 1)[1].split("@", 1)[0]
            found[consultation] = found.get(consultation, 0) + 1
    return found


async def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_one_consultation_reaches_an_email_and_a_task(running_desk):
    desk = running_desk
    async with httpx.AsyncClient(base_url=desk.url("intake"), timeout=10) as intake:
        response = await intake.post("/api/v1/consultations", json=submission(1))
        assert response.status_code == 202
        receipt = response.json()
        async with operator_session(desk) as console:
            async def task_listed():
                tasks = (await console.get("/api/v1/tasks")).json()
                return [t for t in tasks if t["receipt_no"] == receipt["receipt_no"]]

            tasks = await wait_for(task_listed, 60, "the call task in the console")
        assert [t["kind"] for t in tasks] == ["email"]  # submission(1) asks to be written to

        async def status_scheduled():
            status = (await intake.get(f"/api/v1/consultations/{receipt['receipt_no']}",
                                       headers={"X-Status-Token": receipt["status_token"]})).json()
            return status if status["status"] == "scheduled" else None

        status = await wait_for(status_scheduled, 30, "the scheduled status")
        assert status["slot"]["starts_at"] >= receipt["contact_expected_from"]

    async def mailed():
        return acknowledgements(desk).get(receipt["consultation_id"])

    assert await wait_for(mailed, 30, "the acknowledgement e-mail") == 1


async def test_a_batch_survives_a_hard_kill_of_eligibility(running_desk):
    desk = running_desk
    batch = 60
    receipts = []
    async with httpx.AsyncClient(base_url=desk.url("intake"), timeout=20) as intake:
        for i in range(batch):
            if i == batch // 3:
                await asyncio.to_thread(desk.kill_hard, "eligibility")  # mid-flight
            response = await intake.post("/api/v1/consultations", json=submission(100 + i))
            assert response.status_code == 202
            receipts.append(response.json())
    await asyncio.sleep(1)
    desk.start("eligibility")
    await asyncio.to_thread(desk.wait_ready, "eligibility")

    wanted = {r["receipt_no"] for r in receipts}
    async with operator_session(desk) as console:
        async def all_tasked():
            tasks = [t for t in (await console.get("/api/v1/tasks")).json() if t["receipt_no"] in wanted]
            return tasks if {t["receipt_no"] for t in tasks} == wanted else None

        tasks = await wait_for(all_tasked, 180, "a task for every consultation of the batch")
        await asyncio.sleep(3)  # let any duplicate that is still on its way arrive
        tasks = [t for t in (await console.get("/api/v1/tasks")).json() if t["receipt_no"] in wanted]

    per_receipt = {}
    for t in tasks:
        per_receipt[t["receipt_no"]] = per_receipt.get(t["receipt_no"], 0) + 1
    assert len(per_receipt) == batch, "lost consultations"
    assert max(per_receipt.values()) == 1, "duplicate tasks"

    ids = {r["consultation_id"] for r in receipts}

    async def all_mailed():
        mails = {k: v for k, v in acknowledgements(desk).items() if k in ids}
        return mails if len(mails) == batch else None

    mails = await wait_for(all_mailed, 60, "an acknowledgement for every consultation")
    assert set(mails.values()) == {1}, "duplicate acknowledgement e-mails"
