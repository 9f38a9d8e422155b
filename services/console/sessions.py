"""Operators' sessions, kept server-side in the console schema, and what every console route
uses to know who is asking:

    operator = Depends(current_operator)      # 303 to /login (pages) or 401 (API) without a session
    operator = Depends(require_supervisor)    # 403 for an operator
    await check_csrf(request)                 # 403 unless the session's token came with the write

The guard (services/console/guard.py) already refuses every route but the log-in and the health
probes without a session, and every write without its CSRF token; these say who the operator is.
Forms carry the token as the hidden field `csrf_token` (pages get `csrf_token` in their
context), the JSON API as the header `X-CSRF-Token` (POST /api/v1/session answers it)."""
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import Request, Response
from sqlalchemy import delete, insert, or_, select, update

from services.console.accounts import Operator
from services.console.orm import operator_sessions, operators
from shared.db import Database
from shared.settings import Settings

log = logging.getLogger("payhara.console")

SESSION_COOKIE = "payhara_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
TOUCH_AFTER = timedelta(minutes=1)  # last use is written at most once a minute per session
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class NotLoggedIn(Exception):
    """No session, or one that has not logged in."""


class NotAllowed(Exception):
    """Logged in, but the operator's role may not do this."""


class CsrfRefused(Exception):
    """A write without the session's CSRF token."""


@dataclass(frozen=True)
class Session:
    key_hash: str
    csrf_token: str
    operator: Operator | None  # None: the log-in form's session
    created_at: datetime

    @property
    def ref(self) -> str:
        """Names the session in logs without opening it."""
        return self.key_hash[:10]


class SessionStore:
    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime]):
        self.db, self.clock = db, clock
        # keyed: PAYHARA_CONSOLE_SECRET changed ends every session
        self._key = settings.console_secret.get_secret_value().encode()
        self.idle = timedelta(minutes=settings.console_session_idle_minutes)
        self.lifetime = timedelta(hours=settings.console_session_lifetime_hours)
        self.secure_cookies = settings.env not in ("dev", "test")  # dev and test run on http://127.0.0.1

    def _key_hash(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    async def start(self, operator: Operator | None, address: str,
                    replacing: Session | None = None) -> tuple[str, Session]:
        """A new session (and token for the cookie); the one it replaces ends, so an id that was
        known before the log-in is worth nothing after it."""
        token, now = secrets.token_urlsafe(32), self.clock()
        session = Session(self._key_hash(token), secrets.token_urlsafe(32), operator, now)
        async with self.db.begin() as conn:
            if replacing is not None:
                await conn.execute(delete(operator_sessions).where(operator_sessions.c.key_hash == replacing.key_hash))
            await conn.execute(insert(operator_sessions).values(
                key_hash=session.key_hash, operator_id=operator.id if operator else None,
                csrf_token=session.csrf_token, created_at=now, last_seen_at=now, address=address))
        return token, session

    async def find(self, token: str | None) -> Session | None:
        """The live session behind a cookie; None (and the record gone) once it expired or its
        operator was disabled."""
        if not token or len(token) > 100:
            return None
        key_hash = self._key_hash(token)
        async with self.db() as conn:
            row = (await conn.execute(
                select(operator_sessions, operators.c.login, operators.c.display_name, operators.c.role,
                       operators.c.disabled)
                .outerjoin(operators, operators.c.id == operator_sessions.c.operator_id)
                .where(operator_sessions.c.key_hash == key_hash))).first()
        if row is None:
            return None
        now = self.clock()
        expired = now - row.last_seen_at > self.idle or now - row.created_at > self.lifetime
        if expired or row.disabled:
            await self._end(operator_sessions.c.key_hash == key_hash)
            log.info("console session ended: session=%s operator=%s reason=%s",
                     key_hash[:10], row.operator_id, "expired" if expired else "disabled")
            return None
        if now - row.last_seen_at > TOUCH_AFTER:
            async with self.db.begin() as conn:
                await conn.execute(update(operator_sessions).where(
                    operator_sessions.c.key_hash == key_hash).values(last_seen_at=now))
        operator = (Operator(row.operator_id, row.login, row.display_name, row.role)
                    if row.operator_id is not None else None)
        return Session(key_hash, row.csrf_token, operator, row.created_at)

    async def end(self, session: Session) -> None:
        await self._end(operator_sessions.c.key_hash == session.key_hash)

    async def end_all_of(self, operator_id: int) -> int:
        """Revoke: every session of an operator ends now."""
        return await self._end(operator_sessions.c.operator_id == operator_id)

    async def purge(self) -> int:
        now = self.clock()
        return await self._end(or_(operator_sessions.c.last_seen_at < now - self.idle,
                                   operator_sessions.c.created_at < now - self.lifetime))

    async def _end(self, condition) -> int:
        async with self.db.begin() as conn:
            return (await conn.execute(delete(operator_sessions).where(condition))).rowcount

    def set_cookie(self, response: Response, token: str) -> None:
        # HttpOnly: no script reads it. SameSite=Lax: not sent with another site's POST or
        # frame, but sent when an operator follows a link to the console from mail or chat
        # (Strict would show them the log-in page); every write needs the CSRF token anyway.
        # No Max-Age: it goes with the browser; the record's idle and absolute limits end it.
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=self.secure_cookies)

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=self.secure_cookies)


def address_of(request: Request) -> str:
    """Where a request comes from (behind a proxy: as uvicorn's --forwarded-allow-ips trusts)."""
    return request.client.host if request.client else "unknown"


def session_of(request: Request) -> Session | None:
    return getattr(request.state, "console_session", None)


async def current_operator(request: Request) -> Operator:
    session = session_of(request)
    if session is None or session.operator is None:
        raise NotLoggedIn()
    return session.operator


async def require_supervisor(request: Request) -> Operator:
    operator = await current_operator(request)
    if not operator.is_supervisor:
        raise NotAllowed()
    return operator


async def sent_csrf_token(request: Request) -> str | None:
    """The X-CSRF-Token header, or else the form's csrf_token field."""
    if (header := request.headers.get(CSRF_HEADER)) is not None:
        return header
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        await request.body()  # kept, so that the route reads the same form after this
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def tokens_match(sent: str | None, session: Session | None) -> bool:
    return session is not None and sent is not None and hmac.compare_digest(
        sent.encode(), session.csrf_token.encode())


async def check_csrf(request: Request) -> None:
    if not tokens_match(await sent_csrf_token(request), session_of(request)):
        raise CsrfRefused()


def same_origin(request: Request) -> bool:
    """What the browser says of where a request comes from. Browsers send Sec-Fetch-Site (or at
    least Origin) with every POST; a client that sends neither is no browser a site can drive."""
    if (site := request.headers.get("sec-fetch-site")) is not None:
        return site in ("same-origin", "none")
    if (origin := request.headers.get("origin")) is not None:
        return urlsplit(origin).netloc == request.headers.get("host", "")
    return True


def log_in_allowed(request: Request, sent: str | None) -> bool:
    """CSRF for the log-in, where there may be no session yet: the token of the log-in form's
    session when there is one, else a request from this site (or from no browser at all)."""
    session = session_of(request)
    if session is not None:
        return tokens_match(sent, session)
    return same_origin(request)
