"""intake: the scheduler's availability, kept for the honest promise

Revision ID: intake_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0002"
down_revision = "intake_0001"
SCHEMA = "intake"


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


def downgrade() -> None:
    op.drop_column("consultations", "contact_may_take_longer", schema=SCHEMA)
    op.drop_table("availability", schema=SCHEMA)
