"""intake: the scheduler's availability, kept for the honest promise; the call attempt shown, `unreachable`

Revision ID: intake_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0002"
down_revision = "intake_0001"
SCHEMA = "intake"
STATUSES = ("received", "under_review", "eligible", "ineligible", "scheduled", "unreachable")


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
    op.add_column("consultations", sa.Column("contact_may_take_longer", sa.Boolean, nullable=False,
                                             server_default=sa.false()), schema=SCHEMA)
    op.add_column("consultations", sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
                  schema=SCHEMA)
    # a callback that reached nobody: the status page tells the consultant how to reach the desk
    op.drop_constraint("ck_consultations_status_known", "consultations", schema=SCHEMA)
    op.create_check_constraint(op.f("ck_consultations_status_known"), "consultations",
                               f"status in {STATUSES}", schema=SCHEMA)


def downgrade() -> None:
    op.drop_constraint("ck_consultations_status_known", "consultations", schema=SCHEMA)
    op.create_check_constraint(op.f("ck_consultations_status_known"), "consultations",
                               f"status in {STATUSES[:-1]}", schema=SCHEMA)
    op.drop_column("consultations", "attempt", schema=SCHEMA)
    op.drop_column("consultations", "contact_may_take_longer", schema=SCHEMA)
    op.drop_table("availability", schema=SCHEMA)
