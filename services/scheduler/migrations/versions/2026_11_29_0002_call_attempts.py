"""scheduler: a booking's live attempt and status, and the call attempts with their outcomes

Revision ID: scheduler_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "scheduler_0002"
down_revision = "scheduler_0001"
SCHEMA = "scheduler"


def upgrade() -> None:
    # bookings made before this revision are at their first attempt, still live
    op.add_column("bookings", sa.Column("attempt", sa.Integer, nullable=False, server_default="1"), schema=SCHEMA)
    op.add_column("bookings", sa.Column("status", sa.Text, nullable=False, server_default="live"), schema=SCHEMA)
    op.add_column("bookings", sa.Column("closed_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.execute(f"alter table {SCHEMA}.bookings add constraint ck_bookings_attempt_positive check (attempt >= 1), "
               "add constraint ck_bookings_status_known "
               "check (status in ('live', 'reached', 'exhausted', 'unschedulable'))")
    op.create_table(
        "attempts",
        sa.Column("booking_id", sa.Uuid, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("slot_id", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("operator_id", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("booking_id", "attempt", name=op.f("pk_attempts")),
        sa.ForeignKeyConstraint(["booking_id"], [f"{SCHEMA}.bookings.id"], name=op.f("fk_attempts_booking_id_bookings")),
        sa.ForeignKeyConstraint(["slot_id"], [f"{SCHEMA}.slots.id"], name=op.f("fk_attempts_slot_id_slots")),
        sa.CheckConstraint("outcome in ('reached', 'no_answer', 'wrong_number')", name=op.f("ck_attempts_outcome_known")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("attempts", schema=SCHEMA)
    op.execute(f"alter table {SCHEMA}.bookings drop constraint ck_bookings_status_known, "
               "drop constraint ck_bookings_attempt_positive")
    for column in ("closed_at", "status", "attempt"):
        op.drop_column("bookings", column, schema=SCHEMA)
