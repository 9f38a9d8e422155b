"""Transactional outbox: an event is written in the same transaction as the change that caused
it, and a relay publishes it afterwards. Nothing on a request path ever talks to the broker."""
import uuid
from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    insert,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import Envelope, Event, wrap


def outbox_table(metadata: MetaData) -> Table:
    table = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("routing_key", Text, nullable=False),
        Column("correlation_id", Uuid, nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
    )
    Index("ix_outbox_unsent", table.c.attempts, table.c.id, postgresql_where=table.c.sent_at.is_(None))
    return table


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


async def add_event(session: AsyncConnection, outbox: Table, event: Event, correlation_id: uuid.UUID) -> Envelope:
    """Stage an event in the caller's transaction; a trigger wakes the relay at commit."""
    envelope = wrap(event, correlation_id)
    await session.execute(insert(outbox), _row(envelope))
    return envelope


async def add_events(session: AsyncConnection, outbox: Table,
                     events: Sequence[tuple[Event, uuid.UUID]]) -> list[Envelope]:
    """Stage many (event, correlation_id) in the caller's transaction, in one statement."""
    envelopes = [wrap(event, correlation_id) for event, correlation_id in events]
    if envelopes:
        await session.execute(insert(outbox), [_row(e) for e in envelopes])
    return envelopes


def _row(envelope: Envelope) -> dict:
    return {"event_id": envelope.event_id, "routing_key": envelope.event_type,
            "correlation_id": envelope.correlation_id, "body": envelope.model_dump_json()}
