"""notifier: consultation copy, notifications, tasks, pending tasks, outbox, inbox

Revision ID: notifier_0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migrate import create_outbox_and_inbox

revision = "notifier_0001"
down_revision = None
SCHEMA = "notifier"
TASK_KINDS = "kind in ('call','email','review','decline')"


def upgrade() -> None:
    create_outbox_and_inbox(op, SCHEMA)
    op.create_table(
        "consultations",
        sa.Column("consultation_id", sa.Uuid, primary_key=True),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("consultant_name", sa.Text, nullable=False),
        sa.Column("contact_method", sa.Text, nullable=False),
        sa.Column("phone", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("urls", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_expected_from", sa.Date, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("consultation_id", "kind", name="uq_notifications_consultation_kind"),
        sa.CheckConstraint("status in ('sending','sent')", name="status_known"),
        schema=SCHEMA,
    )
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.Uuid, primary_key=True),
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("booking_id", sa.Uuid),
        sa.Column("reason", sa.Text),
        sa.Column("due_starts_at", sa.DateTime(timezone=True)),
        sa.Column("due_ends_at", sa.DateTime(timezone=True)),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("consultation_id", "kind", name="uq_tasks_consultation_kind"),
        sa.UniqueConstraint("booking_id", name="uq_tasks_booking_id"),  # one call task per booking
        sa.CheckConstraint(TASK_KINDS, name="kind_known"),
        schema=SCHEMA,
    )
    op.create_table(
        "pending",
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("booking_id", sa.Uuid),
        sa.Column("reason", sa.Text),
        sa.Column("due_starts_at", sa.DateTime(timezone=True)),
        sa.Column("due_ends_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("consultation_id", "kind", name="pk_pending"),
        sa.CheckConstraint(TASK_KINDS, name="kind_known"),
        schema=SCHEMA,
    )
