"""Consultations into intake's JSON API at a fixed rate, whatever happens to the desk meanwhile.

Open loop on purpose: a consultant does not wait for the desk to recover before pressing the
button, so the schedule goes on while a fault is in progress. Bounded in every way: a fixed
count, a timeout per request, a cap on requests in flight, and only 127.0.0.1.
"""
import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from tests.support import submission

REQUEST_TIMEOUT_S = 10.0
IN_FLIGHT = 100
KEEPALIVE_S = 2.0  # below uvicorn's 5 s: a connection the server is closing is never reused


@dataclass
class Receipt:
    receipt_no: str
    consultation_id: str
    index: int  # which submission(i): odd ones ask to be written to

    @property
    def by_email(self) -> bool:
        return self.index % 2 == 1


@dataclass
class LoadResult:
    accepted: dict[str, Receipt] = field(default_factory=dict)  # receipt_no -> receipt
    refused: int = 0  # 503: the desk said "not now", honestly
    failed: Counter = field(default_factory=Counter)  # anything else: status or error type

    def failures(self) -> str:
        return ", ".join(f"{what}×{n}" for what, n in self.failed.most_common()) or "-"


class Load:
    """`count` consultations at `rate` per second from submission(first + step * k)."""

    def __init__(self, intake_url: str, count: int, rate: float, first: int = 0, step: int = 1):
        if not intake_url.startswith("http://127.0.0.1:"):
            raise ValueError(f"load goes to 127.0.0.1 only, not {intake_url}")
        self.url, self.count, self.rate = intake_url, count, rate
        self.first, self.step = first, step
        self.result = LoadResult()

    @property
    def duration_s(self) -> float:
        return self.count / self.rate

    async def run(self) -> LoadResult:
        gate = asyncio.Semaphore(IN_FLIGHT)
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT, keepalive_timeout=KEEPALIVE_S)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(self.url, connector=connector, timeout=timeout) as client:
            t0, pending = time.monotonic(), []
            for k in range(self.count):
                delay = t0 + k / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                pending.append(asyncio.create_task(self._one(client, gate, self.first + self.step * k)))
            await asyncio.gather(*pending)
        return self.result

    async def _one(self, client: aiohttp.ClientSession, gate: asyncio.Semaphore, i: int) -> None:
        async with gate:
            try:
                async with client.post("/api/v1/consultations", json=submission(i)) as response:
                    if response.status == 202:
                        body = await response.json()
                        receipt = Receipt(body["receipt_no"], body["consultation_id"], i)
                        self.result.accepted[receipt.receipt_no] = receipt
                    elif response.status == 503:
                        self.result.refused += 1
                    else:
                        self.result.failed[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as error:
                self.result.failed[_short(error)] += 1


def _short(error: Exception) -> str:
    """A short name for the table: the desk down (no connection), gone mid-request, or slow."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return "no-conn"
    if isinstance(error, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return "cut"
    if isinstance(error, TimeoutError):
        return "timeout"
    return type(error).__name__
