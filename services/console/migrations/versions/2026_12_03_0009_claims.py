"""console: every claim of a task (task, operator, when), so that the supervisors' figures keep a
claim that was released, left to expire or taken over later

Revision ID: console_0009
Revises: console_0008
"""
import sqlalchemy as sa
from alembic import op

revision = "console_0009"
down_revision = "console_0008"
SCHEMA = "console"


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("task_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.tasks.task_id", ondelete="CASCADE"), nullable=False),
        sa.Column("operator_id", sa.BigInteger, sa.ForeignKey(f"{SCHEMA}.operators.id"), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_claims"),
        schema=SCHEMA,
    )
    op.create_index("ix_claims_claimed_at", "claims", ["claimed_at"], schema=SCHEMA)
    # the claims held at the upgrade, so this week's figures do not drop: their time read back
    # from their end as the figures did before, with the default claim length (30 minutes)
    op.execute(f"""insert into "{SCHEMA}".claims (task_id, operator_id, claimed_at)
                   select task_id, claimed_by, claimed_until - interval '30 minutes'
                   from "{SCHEMA}".tasks where claimed_by is not null and claimed_until is not null""")


def downgrade() -> None:
    op.drop_table("claims", schema=SCHEMA)
