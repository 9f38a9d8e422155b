"""Test set-up shared by every tier: the real PostgreSQL and RabbitMQ, from the environment.

Tests use PAYHARA_DATABASE_URL / PAYHARA_AMQP_URL (the Makefile points them at a `payhara_test`
database and vhost). Where neither is reachable and a Docker engine exists, testcontainers starts
them; where neither, the run stops with a clear message instead of skipping.
"""
import asyncio
import os
import socket
from urllib.parse import urlparse

import pytest

os.environ.setdefault("PAYHARA_ENV", "test")
os.environ.setdefault("PAYHARA_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/payhara_test")
os.environ.setdefault("PAYHARA_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/payhara_test")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _containers_or_exit() -> None:
    """Fallback: start PostgreSQL and RabbitMQ with testcontainers when a Docker engine exists."""
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        pytest.exit(
            "PostgreSQL or RabbitMQ is not reachable at PAYHARA_DATABASE_URL / PAYHARA_AMQP_URL and no Docker "
            "engine is available for testcontainers. Start them (see README: `make test` does) and retry.",
            returncode=3,
        )
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    pg = PostgresContainer("postgres:15", driver="asyncpg").start()
    mq = RabbitMqContainer("rabbitmq:3.13").start()
    os.environ["PAYHARA_DATABASE_URL"] = pg.get_connection_url()
    os.environ["PAYHARA_AMQP_URL"] = (
        f"amqp://guest:guest@{mq.get_container_host_ip()}:{mq.get_exposed_port(5672)}/"
    )


@pytest.fixture(scope="session")
def settings():
    if not (_reachable(os.environ["PAYHARA_DATABASE_URL"], 5432) and _reachable(os.environ["PAYHARA_AMQP_URL"], 5672)):
        _containers_or_exit()
    from shared.settings import Settings

    return Settings()


async def _recreate_database(database_url: str) -> None:
    import asyncpg

    from shared.db import libpq_dsn

    dsn = libpq_dsn(database_url)
    name = urlparse(dsn).path.lstrip("/")
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()


async def _reset_broker(settings) -> None:
    """Delete this desk's queues and exchanges in the test vhost, then declare them afresh."""
    import aio_pika

    from shared.topology import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, SUBSCRIPTIONS, dead_letter_queue_name, declare_all, queue_name

    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for service, subscribed in SUBSCRIPTIONS.items():
            for event in subscribed:
                name = queue_name(service, event)
                await channel.queue_delete(name)
                await channel.queue_delete(dead_letter_queue_name(name))
        await channel.exchange_delete(EVENTS_EXCHANGE)
        await channel.exchange_delete(DEAD_LETTER_EXCHANGE)
        await declare_all(channel, settings.delivery_limit)


@pytest.fixture(scope="session")
async def desk(settings):
    """A fresh test database with every service migrated, and a fresh broker topology."""
    from shared import migrate
    from shared.migrate import SERVICES_DIR
    from shared.topology import SERVICES

    await _recreate_database(settings.database_url)
    ready = tuple(s for s in SERVICES if (SERVICES_DIR / s / "migrations" / "env.py").exists())
    await asyncio.to_thread(migrate.upgrade, ready, settings.database_url)
    await _reset_broker(settings)
    return settings
