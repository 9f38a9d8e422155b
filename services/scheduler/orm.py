"""Tables of the scheduler schema: callback slots, bookings, outbox and inbox."""
from sqlalchemy import (
    BigInteger, CheckConstraint, Column, DateTime, ForeignKey, Identity, Integer, Table, Text, Uuid,
)

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "scheduler"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

# One row per callback hour; `booked` only moves through a conditional update, and the CHECK
# is the last line of defence against over-booking.
slots = Table(
    "slots",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("starts_at", DateTime(timezone=True), nullable=False, unique=True),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("booked", Integer, nullable=False, server_default="0"),
    CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
    CheckConstraint("ends_at > starts_at", name="ends_after_start"),
)

# One booking per consultation: the unique constraint backs the inbox against a re-sent verdict.
bookings = Table(
    "bookings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("consultation_id", Uuid, nullable=False, unique=True),
    Column("receipt_no", Text, nullable=False),
    Column("slot_id", BigInteger, ForeignKey(slots.c.id), nullable=False, index=True),
    Column("booked_at", DateTime(timezone=True), nullable=False),
)
