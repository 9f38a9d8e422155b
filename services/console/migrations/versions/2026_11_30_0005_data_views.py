"""console: who saw a consultation's personal data, when, and on what (the supervisors' audit)

Revision ID: console_0005
Revises: console_0004
"""
import sqlalchemy as sa
from alembic import op

revision = "console_0005"
down_revision = "console_0004"
SCHEMA = "console"


def upgrade() -> None:
    op.create_table(
        "data_views",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("operator_id", sa.BigInteger, sa.ForeignKey(f"{SCHEMA}.operators.id"), nullable=False),
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("what", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_data_views"),
        schema=SCHEMA,
    )
    # newest first, whole or for one receipt or one operator; the purge goes by `at`
    op.create_index("ix_data_views_at", "data_views", ["at", "id"], schema=SCHEMA)
    op.create_index("ix_data_views_receipt_no", "data_views", ["receipt_no", "at", "id"], schema=SCHEMA)
    op.create_index("ix_data_views_operator_id", "data_views", ["operator_id", "at", "id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("data_views", schema=SCHEMA)
