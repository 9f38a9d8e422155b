"""console: intake's answers to the consultations operators entered on the phone

Revision ID: console_0003
Revises: console_0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "console_0003"
down_revision = "console_0002"
SCHEMA = "console"


def upgrade() -> None:
    op.create_table(
        "phone_answers",
        sa.Column("submission_id", sa.Uuid, nullable=False),
        sa.Column("operator_id", sa.Text, nullable=False),
        sa.Column("consultation_id", sa.Uuid),
        sa.Column("receipt_no", sa.Text),
        sa.Column("contact_expected_from", sa.Date),
        sa.Column("contact_may_take_longer", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("errors", JSONB),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("submission_id", name="pk_phone_answers"),
        sa.CheckConstraint("(receipt_no is null) <> (errors is null)", name="ck_phone_answers_received_or_refused"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("phone_answers", schema=SCHEMA)
