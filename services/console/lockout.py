"""Lock-out after repeated failed log-ins, per login and per address, kept in the console schema
so that every console process sees the same count and a restart forgets nothing.

`limits` (moving windows) was considered: its storages are memory (one per process), Redis,
Memcached and MongoDB; the desk has PostgreSQL only, and its lock-out must hold across processes."""
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, true

from services.console.orm import login_failures
from shared.db import Database
from shared.settings import Settings

log = logging.getLogger("payhara.console")


def locked_until(failures: Sequence[datetime], threshold: int, window: timedelta,
                 lockout: timedelta) -> datetime | None:
    """When the latest lock ends: a lock starts at any failure that makes `threshold` failures
    within `window`, and lasts `lockout`. Attempts refused while locked are not failures, so
    an attacker cannot keep a lock going by knocking on it."""
    times = sorted(failures, reverse=True)
    for newest in range(len(times) - threshold + 1):
        if times[newest] - times[newest + threshold - 1] <= window:
            return times[newest] + lockout
    return None


@dataclass(frozen=True)
class Locked:
    scope: str  # "login" | "address"
    until: datetime
    now: datetime

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil((self.until - self.now).total_seconds()))


class Lockout:
    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime]):
        self.db, self.clock = db, clock
        self.per_login = settings.console_login_failures_per_login
        self.per_address = settings.console_login_failures_per_address
        self.window = timedelta(minutes=settings.console_login_failure_window_minutes)
        self.lockout = timedelta(minutes=settings.console_lockout_minutes)

    async def admit(self, login: str, address: str) -> int | Locked:
        """An attempt's id, or why it is refused. The attempt is written (and committed) before
        its password is checked, then the count is read again: of guesses made in parallel,
        no more than the threshold get past (insert, then count; never count, then insert)."""
        if (locked := await self._locked(login, address)) is not None:
            return locked
        async with self.db.begin() as session:
            attempt = await session.scalar(insert(login_failures).values(
                login=login, address=address, failed_at=self.clock()).returning(login_failures.c.id))
        if (locked := await self._locked(login, address, besides=attempt)) is not None:
            await self._forget(login_failures.c.id == attempt)
            return locked
        return attempt

    async def failed(self, login: str, address: str) -> Locked | None:
        """After a wrong password (its row stays): the lock it started, if it did."""
        return await self._locked(login, address)

    async def succeeded(self, login: str) -> None:
        """A right password ends the login's run of failures (not the address's)."""
        await self._forget(login_failures.c.login == login)

    async def purge(self) -> int:
        """Forget failures too old to count any more."""
        return await self._forget(login_failures.c.failed_at < self.clock() - self.window - self.lockout)

    async def _locked(self, login: str, address: str, besides: int | None = None) -> Locked | None:
        now = self.clock()
        async with self.db() as session:
            for scope, threshold, key in (("login", self.per_login, login), ("address", self.per_address, address)):
                column = login_failures.c[scope]
                # refused attempts are never kept, so a horizon holds a few runs at most
                statement = select(login_failures.c.failed_at).where(
                    column == key, login_failures.c.failed_at > now - self.window - self.lockout,
                    login_failures.c.id != besides if besides is not None else true(),
                ).order_by(login_failures.c.failed_at.desc()).limit(10 * threshold)
                failures = (await session.execute(statement)).scalars().all()
                until = locked_until(failures, threshold, self.window, self.lockout)
                if until is not None and until > now:
                    return Locked(scope, until, now)
        return None

    async def _forget(self, condition) -> int:
        async with self.db.begin() as session:
            return (await session.execute(delete(login_failures).where(condition))).rowcount
