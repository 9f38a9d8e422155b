"""scheduler: the first free day last announced to intake

Revision ID: scheduler_0003
"""
import sqlalchemy as sa
from alembic import op

revision = "scheduler_0003"
down_revision = "scheduler_0002"
SCHEMA = "scheduler"


def upgrade() -> None:
    op.create_table(
        "availability",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("first_free_day", sa.Date, nullable=False),
        sa.Column("busy", sa.Boolean, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_availability_one_row"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("availability", schema=SCHEMA)
