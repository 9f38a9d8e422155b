"""Inbox: a consumer records each event it handled in the same transaction as the effect,
so a redelivered event is recognised and skipped."""
import uuid
from collections.abc import Sequence

from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.messaging import Delivery


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def first_deliveries(session: AsyncConnection, inbox: Table, consumer: str,
                           deliveries: Sequence[Delivery]) -> list[Delivery]:
    """The deliveries of a batch seen for the first time, in their order, each event once (a
    copy in the same batch or handled before is dropped); one statement for the whole batch."""
    by_id: dict[uuid.UUID, Delivery] = {}
    for delivery in deliveries:
        by_id.setdefault(delivery.envelope.event_id, delivery)
    unique = list(by_id.values())
    if not unique:
        return []
    inserted = await session.execute(  # sorted: two instances given the same events wait, never deadlock
        insert(inbox).on_conflict_do_nothing().returning(inbox.c.event_id),
        [{"consumer": consumer, "event_id": event_id} for event_id in sorted(by_id)],
    )
    new = set(inserted.scalars())
    return [d for d in unique if d.envelope.event_id in new]
