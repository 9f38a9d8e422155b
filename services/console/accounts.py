"""Operator accounts: create or reset one, check a log-in (moving an old hash to argon2id),
find the operator behind a session, and the `payhara operators add` command."""
import getpass
import logging
import sys
import unicodedata
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from services.console import passwords
from services.console.orm import operator_sessions, operators
from shared.db import Database

log = logging.getLogger("payhara.console")

ROLES = {"operator": "オペレーター", "supervisor": "責任者"}
MIN_PASSWORD_LENGTH = 12
MAX_TEXT_CHARS = 1024
DEV_OPERATOR = ("dev", "開発用オペレーター", "dev-password", "supervisor")


@dataclass(frozen=True)
class Operator:
    id: int
    login: str
    display_name: str
    role: str = "operator"

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def ref(self) -> str:
        """The operator as the desk's events name them (operator_id): stable, and no one's name."""
        return f"op-{self.id}"

    def as_json(self) -> dict:
        return {"id": self.id, "login": self.login, "display_name": self.display_name, "role": self.role,
                "role_label": ROLES.get(self.role, self.role)}


def normalize_login(login: str) -> str:
    """Full-width letters and case do not make a different login."""
    return unicodedata.normalize("NFKC", login).strip().lower()


def has_control_characters(text: str, allow_line_breaks: bool = False) -> bool:
    """NUL, escape, DEL and the rest of Unicode's Cc: never part of a login, a name or a password."""
    allowed = "\r\n\t" if allow_line_breaks else ""
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text)


def _operator(row) -> Operator:
    return Operator(row.id, row.login, row.display_name, row.role)


async def add_operator(sessions: Database, login: str, display_name: str, password: str,
                       role: str | None = None) -> Operator:
    """Create an operator (role: operator unless given), or reset the password, the display name
    and, if given, the role of an existing one, ending its sessions. A disabled account stays
    disabled: re-enabling is a separate, deliberate act."""
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    password_hash = await passwords.hash_in_background(password)
    values = dict(login=normalize_login(login), display_name=display_name.strip(), password_hash=password_hash)
    statement = insert(operators).values(**values, role=role or "operator")
    changes = {"display_name": statement.excluded.display_name, "password_hash": statement.excluded.password_hash}
    if role is not None:
        changes["role"] = statement.excluded.role
    statement = statement.on_conflict_do_update(index_elements=[operators.c.login], set_=changes).returning(
        operators.c.id, operators.c.login, operators.c.display_name, operators.c.role)
    async with sessions.begin() as session:
        operator = _operator((await session.execute(statement)).one())
        # a new password ends whatever was logged in with the old one
        await session.execute(delete(operator_sessions).where(operator_sessions.c.operator_id == operator.id))
    log.info("operator saved: id=%s role=%s", operator.id, operator.role)
    return operator


async def add_dev_operator(sessions: Database, env: str) -> Operator:
    """The demo supervisor `dev` / `dev-password` of `make up`: only ever in dev mode."""
    if env != "dev":
        raise PermissionError(f"the dev operator is created in dev mode only (PAYHARA_ENV is {env!r})")
    return await add_operator(sessions, *DEV_OPERATOR)


async def authenticate(sessions: Database, login: str, password: str) -> Operator | None:
    """The operator for this login and password, or None; the caller cannot tell why not.
    A hash made with older means (scrypt, weaker argon2 parameters) is replaced by today's."""
    async with sessions() as session:
        row = (await session.execute(select(operators).where(operators.c.login == normalize_login(login)))).first()
    stored = row.password_hash if row is not None else passwords.dummy_hash()
    matches = await passwords.verify_in_background(password, stored)
    if row is None or row.disabled or not matches:
        return None
    if passwords.needs_rehash(stored):
        renewed = await passwords.hash_in_background(password)
        async with sessions.begin() as session:  # unless another log-in renewed it meanwhile
            await session.execute(update(operators).where(
                operators.c.id == row.id, operators.c.password_hash == stored).values(password_hash=renewed))
        log.info("operator %s: password hash renewed to argon2id", row.id)
    return _operator(row)


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("パスワード: ")
    if getpass.getpass("パスワード（確認）: ") != first:
        print("パスワードが一致しません。", file=sys.stderr)
        return None
    return first


def _refusal(login: str, name: str, role: str | None) -> str | None:
    """Why these arguments cannot make an account (Japanese, then English), or None."""
    normalized = normalize_login(login)
    if (not normalized or any(c.isspace() for c in normalized) or has_control_characters(login)
            or len(normalized) > 64):
        return "ログインIDを正しく指定してください（空白・制御文字は使えません、64文字まで） / invalid login"
    if not name.strip() or has_control_characters(name) or len(name) > 100:
        return "表示名を正しく指定してください（制御文字は使えません、100文字まで） / invalid --name"
    if role is not None and role not in ROLES:
        return f"役割は {' または '.join(ROLES)} で指定してください / --role must be one of {', '.join(ROLES)}"
    return None


async def add_operator_command(login: str, name: str, password_stdin: bool, role: str | None = None) -> int:
    """`payhara operators add LOGIN --name NAME [--role operator|supervisor] [--password-stdin]`;
    returns the exit code: 0 saved, 2 bad arguments, 1 a password refused or no database."""
    from shared.db import make_engine, make_sessions
    from shared.settings import get_settings

    if (refusal := _refusal(login, name, role)) is not None:
        print(refusal, file=sys.stderr)
        return 2
    password = _read_password(password_stdin)
    if password is None:
        return 1
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_TEXT_CHARS or has_control_characters(password):
        print(f"パスワードは{MIN_PASSWORD_LENGTH}〜{MAX_TEXT_CHARS}文字で、制御文字を含まないものにしてください。 / "
              f"the password needs {MIN_PASSWORD_LENGTH} to {MAX_TEXT_CHARS} characters, none of them control "
              "characters", file=sys.stderr)
        return 1
    engine = make_engine(get_settings(), pool_size=1)
    try:
        operator = await add_operator(make_sessions(engine), login, name, password, role)
    finally:
        await engine.dispose()
    print(f"{ROLES[operator.role]}「{operator.login}」（{operator.display_name}）を登録しました。"
          "登録済みの場合はパスワードと表示名（指定があれば役割も）を更新し、ログイン中のセッションを終了しました。")
    return 0
