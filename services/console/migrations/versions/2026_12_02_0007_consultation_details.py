"""console: what the task page shows about the consultation (TaskIssued's reading of the name,
role, member number, institution, preferred time, urgency, posts with their platform); older
tasks keep NULL and the page says 「（記録なし）」

Revision ID: console_0007
Revises: console_0006
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "console_0007"
down_revision = "console_0006"
SCHEMA = "console"
COLUMNS = ("name_kana", "role", "member_no", "institution_name", "institution_prefecture",
           "manager_member_no", "preferred_time")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("tasks", sa.Column(name, sa.Text), schema=SCHEMA)
    op.add_column("tasks", sa.Column("urgent", sa.Boolean), schema=SCHEMA)
    op.add_column("tasks", sa.Column("posts", JSONB), schema=SCHEMA)  # [{url, platform}]


def downgrade() -> None:
    for name in (*COLUMNS, "urgent", "posts"):
        op.drop_column("tasks", name, schema=SCHEMA)
