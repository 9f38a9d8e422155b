"""intake: consultations, receipt numbers, outbox, inbox

Revision ID: intake_0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migrate import create_outbox_and_inbox

revision = "intake_0001"
down_revision = None
SCHEMA = "intake"


def upgrade() -> None:
    create_outbox_and_inbox(op, SCHEMA)
    op.execute(sa.schema.CreateSequence(sa.Sequence("receipt_no_seq", schema=SCHEMA, start=1)))
    op.create_table(
        "consultations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("receipt_no", sa.Text, nullable=False, unique=True),
        sa.Column("status_token_hash", sa.LargeBinary, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_expected_from", sa.Date, nullable=False),
        sa.Column("consultant_name", sa.Text, nullable=False),
        sa.Column("consultant_name_kana", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("member_no", sa.Text),
        sa.Column("institution_name", sa.Text),
        sa.Column("institution_prefecture", sa.Text),
        sa.Column("manager_member_no", sa.Text),
        sa.Column("contact_method", sa.Text, nullable=False),
        sa.Column("phone", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("urls", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("slot_starts_at", sa.DateTime(timezone=True)),
        sa.Column("slot_ends_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status in ('received','under_review','eligible','ineligible','scheduled')", name="status_known"
        ),
        schema=SCHEMA,
    )
