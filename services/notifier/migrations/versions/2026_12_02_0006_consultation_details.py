"""notifier: the copy keeps what an operator's task shows about the consultation (reading of the
name, role, member number, institution, preferred time, the posts with their platform); copies
kept before stay NULL and their tasks carry none of it

Revision ID: notifier_0006
Revises: notifier_0005
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "notifier_0006"
down_revision = "notifier_0005"
SCHEMA = "notifier"
COLUMNS = ("name_kana", "role", "member_no", "institution_name", "institution_prefecture",
           "manager_member_no", "preferred_time")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("consultations", sa.Column(name, sa.Text), schema=SCHEMA)
    op.add_column("consultations", sa.Column("posts", JSONB), schema=SCHEMA)  # [{url, platform}]


def downgrade() -> None:
    for name in (*COLUMNS, "posts"):
        op.drop_column("consultations", name, schema=SCHEMA)
