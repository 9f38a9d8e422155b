"""eligibility: member registry (members, institutions), verdicts, outbox, inbox

Revision ID: eligibility_0001
"""
import sqlalchemy as sa
from alembic import op

from shared.migrate import create_outbox_and_inbox

revision = "eligibility_0001"
down_revision = None
SCHEMA = "eligibility"


def upgrade() -> None:
    create_outbox_and_inbox(op, SCHEMA)
    op.create_table(
        "members",
        sa.Column("member_no", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_kana", sa.Text, nullable=False),
        sa.Column("prefecture", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status in ('active','withdrawn')", name="status_known"),
        schema=SCHEMA,
    )
    members = f"{SCHEMA}.members.member_no"
    op.create_table(
        "institutions",
        sa.Column("institution_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_normalized", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("prefecture", sa.Text, nullable=False),
        sa.Column("founder_member_no", sa.Text, sa.ForeignKey(members)),
        sa.Column("manager_member_no", sa.Text, sa.ForeignKey(members)),
        sa.CheckConstraint("kind in ('medical','care')", name="kind_known"),
        sa.CheckConstraint("founder_member_no is not null or manager_member_no is not null", name="linked"),
        schema=SCHEMA,
    )
    for column in ("name_normalized", "founder_member_no", "manager_member_no"):
        op.create_index(f"ix_institutions_{column}", "institutions", [column], schema=SCHEMA)
    op.create_table(
        "verdicts",
        sa.Column("consultation_id", sa.Uuid, primary_key=True),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("basis_member_no", sa.Text),
        sa.Column("institution_id", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("outcome in ('confirmed','rejected','review_requested')", name="outcome_known"),
        schema=SCHEMA,
    )
