"""What the console's tests share: a clock they move by hand, a client on the app, the CSRF token
of a page."""
import re
from datetime import datetime, timedelta, timezone

import httpx
from fastapi import FastAPI


class Clock:
    """The console's clock in a test: now (or the instant given), moved on by hand."""

    def __init__(self, now: datetime | None = None):
        self.now = now or datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


def browser(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client on the app from `address` (the lock-out counts failures per address)."""
    transport = httpx.ASGITransport(app=app, client=(address, 50123))
    return httpx.AsyncClient(transport=transport, base_url="http://console.test")


def csrf_token(page: httpx.Response) -> str:
    return re.search(r'name="csrf_token" value="([^"]*)"', page.text).group(1)
