"""scheduler: a booking keeps the consultant's preferred time and urgency, so that the next
attempt of a call is booked by them as the first one was

Revision ID: scheduler_0006
"""
import sqlalchemy as sa
from alembic import op

revision = "scheduler_0006"
down_revision = "scheduler_0005"
SCHEMA = "scheduler"


def upgrade() -> None:
    op.add_column("bookings", sa.Column("preferred_time", sa.Text, nullable=False, server_default="any"),
                  schema=SCHEMA)
    op.add_column("bookings", sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()),
                  schema=SCHEMA)
    op.execute(f"alter table {SCHEMA}.bookings add constraint ck_bookings_preferred_time_known "
               "check (preferred_time in ('morning', 'afternoon', 'any'))")


def downgrade() -> None:
    op.drop_constraint("ck_bookings_preferred_time_known", "bookings", schema=SCHEMA)
    op.drop_column("bookings", "urgent", schema=SCHEMA)
    op.drop_column("bookings", "preferred_time", schema=SCHEMA)
