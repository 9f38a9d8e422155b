"""console: what operators do with a task: claim it, record a call's outcome, decide a membership
review, enter a consultation taken on the phone

Revision ID: console_0004
Revises: console_0003
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "console_0004"
down_revision = "console_0003"
SCHEMA = "console"
OPERATOR = f"{SCHEMA}.operators.id"
TASK = f"{SCHEMA}.tasks.task_id"


def upgrade() -> None:
    # a call task names its booking and attempt (task.issued.v1); tasks issued before have none
    op.add_column("tasks", sa.Column("booking_id", sa.Uuid), schema=SCHEMA)
    op.add_column("tasks", sa.Column("attempt", sa.Integer, nullable=False, server_default="1"), schema=SCHEMA)
    op.add_column("tasks", sa.Column("claimed_by", sa.BigInteger, sa.ForeignKey(OPERATOR, ondelete="SET NULL")),
                  schema=SCHEMA)
    op.add_column("tasks", sa.Column("claimed_until", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("tasks", sa.Column("closed_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("tasks", sa.Column("closed_by", sa.BigInteger, sa.ForeignKey(OPERATOR, ondelete="SET NULL")),
                  schema=SCHEMA)
    op.create_index("ix_tasks_consultation_id", "tasks", ["consultation_id"], schema=SCHEMA)
    op.create_table(
        "call_outcomes",
        sa.Column("task_id", sa.Uuid, sa.ForeignKey(TASK), nullable=False),
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("booking_id", sa.Uuid, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("operator_id", sa.BigInteger, sa.ForeignKey(OPERATOR), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_call_outcomes"),
        sa.CheckConstraint("outcome in ('reached','no_answer','wrong_number')", name="outcome_known"),
        schema=SCHEMA,
    )
    op.create_table(
        "task_notes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("task_id", sa.Uuid, sa.ForeignKey(TASK), nullable=False),
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("operator_id", sa.BigInteger, sa.ForeignKey(OPERATOR), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_task_notes_consultation_id", "task_notes", ["consultation_id", "written_at"], schema=SCHEMA)
    op.create_table(
        "reviews",
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("candidates", JSONB, nullable=False, server_default="[]"),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consultation_id", name="pk_reviews"),
        schema=SCHEMA,
    )
    op.create_table(
        "review_decisions",
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("task_id", sa.Uuid, sa.ForeignKey(TASK), nullable=False),
        sa.Column("operator_id", sa.BigInteger, sa.ForeignKey(OPERATOR), nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consultation_id", name="pk_review_decisions"),
        sa.CheckConstraint("decision in ('confirm','reject')", name="decision_known"),
        schema=SCHEMA,
    )
    op.create_table(
        "phone_submissions",
        sa.Column("submission_id", sa.Uuid, nullable=False),
        sa.Column("operator_id", sa.BigInteger, sa.ForeignKey(OPERATOR, ondelete="CASCADE"), nullable=False),
        sa.Column("typed", JSONB, nullable=False),
        sa.Column("status_code", sa.Text),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code_shown_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("submission_id", name="pk_phone_submissions"),
        schema=SCHEMA,
    )
    op.create_index("ix_phone_submissions_submitted_at", "phone_submissions", ["submitted_at"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("phone_submissions", "review_decisions", "reviews", "task_notes", "call_outcomes"):
        op.drop_table(table, schema=SCHEMA)
    op.drop_index("ix_tasks_consultation_id", "tasks", schema=SCHEMA)
    for column in ("closed_by", "closed_at", "claimed_until", "claimed_by", "attempt", "booking_id"):
        op.drop_column("tasks", column, schema=SCHEMA)
