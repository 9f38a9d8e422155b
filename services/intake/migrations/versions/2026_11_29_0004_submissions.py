"""intake: one consultation per phone submission; the keys web and API submissions were sent
with, kept a day so that a repeat gets the same receipt

Revision ID: intake_0004
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0004"
down_revision = "intake_0003"
SCHEMA = "intake"


def upgrade() -> None:
    op.add_column("consultations", sa.Column("submission_id", sa.Uuid), schema=SCHEMA)
    op.create_unique_constraint("uq_consultations_submission_id", "consultations", ["submission_id"], schema=SCHEMA)
    op.create_table(
        "submission_keys",
        sa.Column("key_hash", sa.LargeBinary, nullable=False),
        sa.Column("form_hash", sa.LargeBinary, nullable=False),
        # no foreign key: a consultation may be erased (or truncated) on its own; a key whose
        # consultation is gone is free again (services/intake/idempotency.py)
        sa.Column("consultation_id", sa.Uuid, nullable=False),
        sa.Column("sealed_status_token", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name="pk_submission_keys"),
        schema=SCHEMA,
    )
    op.create_index("ix_submission_keys_created_at", "submission_keys", ["created_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("submission_keys", schema=SCHEMA)
    op.drop_constraint("uq_consultations_submission_id", "consultations", schema=SCHEMA)
    op.drop_column("consultations", "submission_id", schema=SCHEMA)
