"""Alembic, once per service: each service's history lives in services/<name>/migrations and
its version table in its own schema. An advisory lock lets several instances start at once."""
import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import notify_channel, outbox_table
from shared.settings import get_settings
from shared.topology import SERVICES, Subscribed, declare_all

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
MIGRATION_LOCK = 7_316_2411  # any constant shared by every instance


def alembic_config(service: str, database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    config.attributes["database_url"] = database_url or get_settings().database_url
    return config


def upgrade(services: tuple[str, ...] = SERVICES, database_url: str | None = None) -> None:
    """Bring each service's schema to head. Synchronous: call it outside an event loop."""
    for service in services:
        command.upgrade(alembic_config(service, database_url), "head")


def run_env(metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    schema = metadata.schema
    url = context.config.attributes.get("database_url") or get_settings().database_url

    def run(connection: Connection) -> None:
        connection.execute(text("select pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        connection.execute(text(f'create schema if not exists "{schema}"'))
        context.configure(connection=connection, target_metadata=metadata, version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(run)
        await engine.dispose()

    asyncio.run(main())


def create_outbox_and_inbox(op, schema: str) -> None:
    """For a service's first migration: the outbox (with its wake-up trigger) and the inbox."""
    bind = op.get_bind()
    metadata = service_metadata(schema)
    outbox_table(metadata).create(bind)
    inbox_table(metadata).create(bind)
    op.execute(
        f"""create function "{schema}".outbox_notify() returns trigger language plpgsql as $$
        begin perform pg_notify('{notify_channel(schema)}', ''); return null; end $$"""
    )
    op.execute(
        f"""create trigger outbox_notify after insert on "{schema}".outbox
        for each statement execute function "{schema}".outbox_notify()"""
    )


async def declare_topology(subscribed: Subscribed) -> None:
    """Declare exchanges and every queue, so no event is unroutable whatever starts first."""
    import aio_pika


    settings = get_settings()
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    async with connection:
        await declare_all(await connection.channel(), subscribed, settings.delivery_limit)
