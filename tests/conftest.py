"""Test set-up shared by every tier: the real PostgreSQL and RabbitMQ, from the environment.

Tests use PAYHARA_DATABASE_URL / PAYHARA_AMQP_URL (the Makefile points them at a `payhara_test`
database and vhost). Where neither is reachable and a Docker engine exists, testcontainers starts
them; where neither, the run stops with a clear message instead of skipping.
"""
import os
import socket
from urllib.parse import urlparse

import pytest

os.environ.setdefault("PAYHARA_ENV", "test")
os.environ.setdefault("PAYHARA_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/payhara_test")
os.environ.setdefault("PAYHARA_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/payhara_test")
# receipts go at once unless a test holds them for their booking (test_notifier_held_receipts.py,
# tests/browser/test_desk_flow.py run with the default)
os.environ.setdefault("PAYHARA_RECEIPT_HOLD_S", "0")


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


@pytest.fixture(scope="session")
async def desk(settings):
    """A fresh test database with every service migrated, and a fresh broker topology."""
    from tests.support import prepare_desk

    await prepare_desk(settings)
    return settings
