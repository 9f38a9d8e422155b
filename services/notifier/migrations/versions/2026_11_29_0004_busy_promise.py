"""notifier: the copy remembers that the desk was busy when the consultation was received

Revision ID: notifier_0004
"""
import sqlalchemy as sa
from alembic import op

revision = "notifier_0004"
down_revision = "notifier_0003"
SCHEMA = "notifier"


def upgrade() -> None:
    op.add_column("consultations", sa.Column("contact_may_take_longer", sa.Boolean, nullable=False,
                                             server_default=sa.false()), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("consultations", "contact_may_take_longer", schema=SCHEMA)
