"""scheduler: callback slots, bookings, outbox, inbox

Revision ID: scheduler_0001
"""
import sqlalchemy as sa
from alembic import op

from shared.migrate import create_outbox_and_inbox

revision = "scheduler_0001"
down_revision = None
SCHEMA = "scheduler"


def upgrade() -> None:
    create_outbox_and_inbox(op, SCHEMA)
    op.create_table(
        "slots",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("booked", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_slots"),
        sa.UniqueConstraint("starts_at", name="uq_slots_starts_at"),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_slots_booked_within_capacity"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_slots_ends_after_start"),
        schema=SCHEMA,
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("slot_id", sa.BigInteger, nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.UniqueConstraint("consultation_id", name="uq_bookings_consultation_id"),
        sa.ForeignKeyConstraint(["slot_id"], [f"{SCHEMA}.slots.id"], name="fk_bookings_slot_id_slots"),
        schema=SCHEMA,
    )
    op.create_index("ix_bookings_slot_id", "bookings", ["slot_id"], schema=SCHEMA)
