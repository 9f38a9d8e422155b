"""Inbox: a consumer records each event it handled in the same transaction as the effect,
so a redelivered event is recognised and skipped."""
import uuid

from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def first_delivery(session: AsyncConnection, inbox: Table, consumer: str, event_id: uuid.UUID) -> bool:
    """True the first time (consumer, event_id) is seen; a concurrent duplicate waits for the
    first transaction and then sees False."""
    inserted = await session.execute(
        insert(inbox)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    return inserted.first() is not None
