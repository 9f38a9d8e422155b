"""intake: the scheduler's first free day for replies by e-mail, for the promise to a consultant
who asked to be written to

Revision ID: intake_0003
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0003"
down_revision = "intake_0002"
SCHEMA = "intake"


def upgrade() -> None:
    op.add_column("availability", sa.Column("first_free_email_day", sa.Date), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("availability", "first_free_email_day", schema=SCHEMA)
