"""Operator accounts: scrypt password hashes, log-in, and the `payhara operators add` command."""
import asyncio
import base64
import getpass
import hashlib
import hmac
import logging
import secrets
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.console.orm import operators
from shared.db import Database

log = logging.getLogger("payhara.console")

N, R, P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
MIN_PASSWORD_LENGTH = 12


@dataclass(frozen=True)
class Operator:
    id: int
    login: str
    display_name: str


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=64 * 1024 * 1024)


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt_b64$hash_b64`; the parameters travel with the hash so they can be raised later."""
    salt = secrets.token_bytes(SALT_BYTES)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(_scrypt(password, salt, N, R, P, KEY_BYTES))}"


def verify_password(password: str, stored: str) -> bool:
    """False for a wrong password and for a stored value that is not one of our hashes."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        expected_raw = base64.b64decode(expected, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p), len(expected_raw))
    except ValueError:  # wrong shape, bad base64, or parameters scrypt refuses
        return False
    return hmac.compare_digest(actual, expected_raw)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # an unknown login costs one scrypt too, so response time does not tell which logins exist
    return hash_password(secrets.token_urlsafe(16))


def normalize_login(login: str) -> str:
    """Full-width letters and case do not make a different login."""
    return unicodedata.normalize("NFKC", login).strip().lower()


def _operator(row) -> Operator:
    return Operator(row.id, row.login, row.display_name)


async def add_operator(sessions: Database, login: str, display_name: str, password: str) -> Operator:
    """Create an operator, or reset the password and display name of an existing one.
    A disabled account stays disabled: re-enabling is a separate, deliberate act."""
    password_hash = await asyncio.to_thread(hash_password, password)
    statement = insert(operators).values(
        login=normalize_login(login), display_name=display_name.strip(), password_hash=password_hash
    )
    statement = statement.on_conflict_do_update(
        index_elements=[operators.c.login],
        set_={"display_name": statement.excluded.display_name, "password_hash": statement.excluded.password_hash},
    ).returning(operators.c.id, operators.c.login, operators.c.display_name)
    async with sessions.begin() as session:
        operator = _operator((await session.execute(statement)).one())
    log.info("operator saved: id=%s", operator.id)
    return operator


async def authenticate(sessions: Database, login: str, password: str) -> Operator | None:
    """The operator for this login and password, or None; the caller cannot tell why not."""
    async with sessions() as session:
        row = (await session.execute(select(operators).where(operators.c.login == normalize_login(login)))).first()
    stored = row.password_hash if row is not None else _dummy_hash()
    matches = await asyncio.to_thread(verify_password, password, stored)  # scrypt must not block the loop
    if row is None or row.disabled or not matches:
        return None
    return _operator(row)


async def operator_by_id(sessions: Database, operator_id: int) -> Operator | None:
    """The logged-in operator behind a session; None once the account is disabled or gone."""
    async with sessions() as session:
        row = (await session.execute(
            select(operators).where(operators.c.id == operator_id, operators.c.disabled.is_(False))
        )).first()
    return _operator(row) if row is not None else None


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("パスワード: ")
    if getpass.getpass("パスワード（確認）: ") != first:
        print("パスワードが一致しません。", file=sys.stderr)
        return None
    return first


async def add_operator_command(login: str, name: str, password_stdin: bool) -> int:
    """`payhara operators add LOGIN --name NAME [--password-stdin]`; returns the exit code."""
    from shared.db import make_engine, make_sessions
    from shared.settings import get_settings

    settings = get_settings()
    if not normalize_login(login) or any(c.isspace() for c in normalize_login(login)) or not name.strip():
        print("ログインIDと表示名を正しく指定してください（ログインIDに空白は使えません）。", file=sys.stderr)
        return 2
    password = _read_password(password_stdin)
    if password is None:
        return 1
    if not password or (len(password) < MIN_PASSWORD_LENGTH and settings.env != "dev"):
        print(f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。", file=sys.stderr)
        return 1
    engine = make_engine(settings, pool_size=1)
    try:
        operator = await add_operator(make_sessions(engine), login, name, password)
    finally:
        await engine.dispose()
    print(f"オペレーター「{operator.login}」（{operator.display_name}）を登録しました。"
          "登録済みの場合はパスワードと表示名を更新しました。")
    return 0
