"""Async engine and sessions; each service owns one Postgres schema."""
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.settings import Settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING)


def make_engine(settings: Settings, pool_size: int | None = None, for_batch_jobs: bool = False) -> AsyncEngine:
    """The service's engine. Every call is bounded: connecting, waiting for a pooled connection
    and each statement (on the client, and on the server for a client that vanished), so a
    database that is down or frozen is an error within seconds, never a hang. `for_batch_jobs`
    (a registry import of 200,000 rows) lifts the statement limit only."""
    statement_s = None if for_batch_jobs else settings.db_statement_timeout_s
    server_settings = {"idle_in_transaction_session_timeout": "60000"}
    if statement_s:
        server_settings["statement_timeout"] = str(int((statement_s + 1) * 1000))
    return create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=5,
        pool_timeout=settings.db_pool_timeout_s,
        connect_args={"timeout": settings.db_connect_timeout_s, "command_timeout": statement_s,
                      "server_settings": server_settings},
        # no ping before every checkout (a third of all round trips); a stale connection fails
        # once, the delivery is requeued or the request retried, and the pool is renewed
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,  # an error's text must not carry the personal data it was writing
    )


class Database:
    """Units of work on Core connections. The desk writes Core statements only, and a
    connection costs about a fifth less CPU per transaction than an ORM session."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    def begin(self):
        """`async with db.begin() as conn`: one transaction, committed unless it raises."""
        return self.engine.begin()

    def __call__(self):
        """`async with db() as conn`: a connection for look-ups (rolled back at the end)."""
        return self.engine.connect()


def make_sessions(engine: AsyncEngine) -> Database:
    return Database(engine)


def libpq_dsn(database_url: str) -> str:
    """The plain postgresql:// form of a SQLAlchemy URL, for asyncpg's own connections."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
