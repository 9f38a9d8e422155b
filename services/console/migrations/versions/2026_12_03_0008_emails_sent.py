"""console: the e-mails the notifier sent to each consultant (notification.email_sent.v1), for the
consultation's history on the task page; once per consultation, kind and attempt

Revision ID: console_0008
Revises: console_0007
"""
import sqlalchemy as sa
from alembic import op

revision = "console_0008"
down_revision = "console_0007"
SCHEMA = "console"


def upgrade() -> None:
    op.create_table(
        "emails_sent",
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consultation_id", "kind", "attempt", name="pk_emails_sent"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("emails_sent", schema=SCHEMA)
