"""eligibility: a verdict under review keeps its candidates and what the scheduler books by;
operators' decisions, the first one applied

Revision ID: eligibility_0003
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "eligibility_0003"
down_revision = "eligibility_0002"
SCHEMA = "eligibility"


def upgrade() -> None:
    for column in (sa.Column("candidates", JSONB, nullable=False, server_default="[]"),
                   sa.Column("contact_expected_from", sa.Date),
                   sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()),
                   sa.Column("preferred_time", sa.Text, nullable=False, server_default="any"),
                   sa.Column("contact_method", sa.Text, nullable=False, server_default="phone")):
        op.add_column("verdicts", column, schema=SCHEMA)
    op.create_table(
        "decisions",
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("operator_id", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("why_not_applied", sa.Text),
        sa.PrimaryKeyConstraint("event_id", name="pk_decisions"),
        sa.CheckConstraint("decision in ('confirm','reject')", name="ck_decisions_decision_known"),
        sa.CheckConstraint("applied = (why_not_applied is null)", name="ck_decisions_applied_or_why_not"),
        schema=SCHEMA,
    )
    op.create_index("ux_decisions_applied", "decisions", ["consultation_id"], unique=True, schema=SCHEMA,
                    postgresql_where=sa.text("applied"))


def downgrade() -> None:
    op.drop_table("decisions", schema=SCHEMA)
    for column in ("contact_method", "preferred_time", "urgent", "contact_expected_from", "candidates"):
        op.drop_column("verdicts", column, schema=SCHEMA)
