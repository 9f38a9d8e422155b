"""console: the day promised to the consultant on each task (TaskIssued.contact_expected_from),
for the supervisors' share of consultations first contacted within the promise

Revision ID: console_0006
Revises: console_0005
"""
import sqlalchemy as sa
from alembic import op

revision = "console_0006"
down_revision = "console_0005"
SCHEMA = "console"


def upgrade() -> None:
    # older tasks keep NULL: their consultations stay out of the share
    op.add_column("tasks", sa.Column("contact_expected_from", sa.Date), schema=SCHEMA)
    # the first call outcome of each consultation (the supervisors' view)
    op.create_index("ix_call_outcomes_consultation_id", "call_outcomes", ["consultation_id", "recorded_at"],
                    schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_call_outcomes_consultation_id", "call_outcomes", schema=SCHEMA)
    op.drop_column("tasks", "contact_expected_from", schema=SCHEMA)
