"""notifier: e-mail hand-overs and possible duplicates on record, unschedulable callbacks, the
time a task order started waiting for its consultation copy

Revision ID: notifier_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "notifier_0002"
down_revision = "notifier_0001"
SCHEMA = "notifier"


def upgrade() -> None:
    op.add_column("notifications", sa.Column("handed_over_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    # before this revision an attempt was counted before its send: `sending` with attempts is a
    # send whose outcome was never recorded, and stays a possible duplicate
    op.execute(f"update {SCHEMA}.notifications set handed_over_at = created_at "
               "where status = 'sending' and attempts > 0")
    op.create_table(
        "possible_duplicates",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "unschedulable_callbacks",
        sa.Column("consultation_id", sa.Uuid, primary_key=True),
        sa.Column("receipt_no", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    # orders already waiting start their clock now: their real start is unknown
    op.add_column("pending", sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                                       server_default=sa.func.now()), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("pending", "created_at", schema=SCHEMA)
    op.drop_table("unschedulable_callbacks", schema=SCHEMA)
    op.drop_table("possible_duplicates", schema=SCHEMA)
    op.drop_column("notifications", "handed_over_at", schema=SCHEMA)
