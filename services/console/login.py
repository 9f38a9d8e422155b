"""Logging an operator in: the lock-out first, then the password, then a new session (the one
the browser had before ends). Every refusal is logged with the login and the address, never
the password."""
import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.console import accounts
from services.console.accounts import Operator
from services.console.lockout import Locked, Lockout
from services.console.sessions import Session, SessionStore
from shared.db import Database

log = logging.getLogger("payhara.console")
PURGE_EVERY_S = 300.0
LOCKED_MESSAGES = {
    "login": "ログインの失敗が続いたため、このログインIDは一時的にロックされています。{minutes}分ほど待ってから、"
             "もう一度お試しください。お急ぎの場合は責任者に連絡してください。",
    "address": "この接続元からのログインの失敗が続いたため、一時的にログインできなくなっています。"
               "{minutes}分ほど待ってから、もう一度お試しください。",
}


@dataclass(frozen=True)
class LoggedIn:
    operator: Operator
    token: str  # for the cookie
    session: Session


@dataclass(frozen=True)
class Refused:
    locked: Locked | None = None  # None: a wrong login or password

    @property
    def message(self) -> str | None:
        if self.locked is None:
            return None
        minutes = max(1, -(-self.locked.retry_after_s // 60))
        return LOCKED_MESSAGES[self.locked.scope].format(minutes=minutes)


class LogIns:
    def __init__(self, db: Database, sessions: SessionStore, lockout: Lockout):
        self.db, self.sessions, self.lockout = db, sessions, lockout

    async def log_in(self, login: str, password: str, address: str,
                     replacing: Session | None) -> LoggedIn | Refused:
        key = accounts.normalize_login(login)[:64]
        attempt = await self.lockout.admit(key, address)
        if isinstance(attempt, Locked):
            log.warning("console log-in refused: login=%r address=%s reason=locked_%s until=%s",
                        key, address, attempt.scope, attempt.until.isoformat(timespec="seconds"))
            return Refused(attempt)
        operator = await accounts.authenticate(self.db, login, password)
        if operator is None:
            locked = await self.lockout.failed(key, address)
            started = f" now locked_{locked.scope} until={locked.until.isoformat(timespec='seconds')}" if locked else ""
            log.warning("console log-in refused: login=%r address=%s reason=wrong_login_or_password%s",
                        key, address, started)
            return Refused()
        await self.lockout.succeeded(key)
        token, session = await self.sessions.start(operator, address, replacing=replacing)
        log.info("console log-in: operator=%s login=%r address=%s session=%s", operator.id, key, address, session.ref)
        return LoggedIn(operator, token, session)

    async def log_out(self, session: Session) -> None:
        await self.sessions.end(session)
        log.info("console log-out: operator=%s session=%s", session.operator.id if session.operator else None,
                 session.ref)

    async def purge_forever(self, also: Callable[[], Awaitable[int]] | None = None) -> None:
        """Alongside the console: expired sessions and failures too old to count are deleted, and
        what `also` deletes (the records of personal data views past their retention)."""
        while True:
            try:
                ended, forgotten = await self.sessions.purge(), await self.lockout.purge()
                views = await also() if also is not None else 0
                if ended or forgotten or views:
                    log.info("console purge: %s expired sessions, %s old log-in failures, %s data views past "
                             "retention", ended, forgotten, views)
            except Exception as error:  # the database away: try again next round
                log.warning("console purge failed: %s", type(error).__name__)
            await asyncio.sleep(PURGE_EVERY_S)
