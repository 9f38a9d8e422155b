"""scheduler: the first free day for replies by e-mail, beside the one for calls

Revision ID: scheduler_0007
"""
import sqlalchemy as sa
from alembic import op

revision = "scheduler_0007"
down_revision = "scheduler_0006"
SCHEMA = "scheduler"


def upgrade() -> None:
    op.add_column("availability", sa.Column("first_free_email_day", sa.Date), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("availability", "first_free_email_day", schema=SCHEMA)
