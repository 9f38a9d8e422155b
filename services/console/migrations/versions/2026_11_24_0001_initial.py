"""console: operators, tasks, outbox, inbox

Revision ID: console_0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migrate import create_outbox_and_inbox

revision = "console_0001"
down_revision = None
SCHEMA = "console"


def upgrade() -> None:
    create_outbox_and_inbox(op, SCHEMA)
    op.create_table(
        "operators",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("login", sa.Text, nullable=False, unique=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.Uuid, primary_key=True),
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("due_starts_at", sa.DateTime(timezone=True)),
        sa.Column("due_ends_at", sa.DateTime(timezone=True)),
        sa.Column("consultant_name", sa.Text, nullable=False),
        sa.Column("contact_method", sa.Text, nullable=False),
        sa.Column("phone", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("urls", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.CheckConstraint("status in ('open','done')", name="status_known"),
        schema=SCHEMA,
    )
    # the task list reads open tasks by due time
    op.create_index(
        "ix_tasks_open_due", "tasks", ["due_starts_at", "issued_at"], schema=SCHEMA,
        postgresql_where=sa.text("status = 'open'"),
    )
