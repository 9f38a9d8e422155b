"""scheduler: the roster, a date's own capacity per slot, with who set it and when

Revision ID: scheduler_0004
"""
import sqlalchemy as sa
from alembic import op

revision = "scheduler_0004"
down_revision = "scheduler_0003"
SCHEMA = "scheduler"


def upgrade() -> None:
    op.create_table(
        "roster",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("set_by", sa.Text, nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_roster"),
        sa.CheckConstraint("capacity >= 0", name="ck_roster_capacity_not_negative"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("roster", schema=SCHEMA)
