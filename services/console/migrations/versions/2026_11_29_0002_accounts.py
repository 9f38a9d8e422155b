"""console: operator roles, server-side sessions, failed log-ins

Revision ID: console_0002
Revises: console_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "console_0002"
down_revision = "console_0001"
SCHEMA = "console"


def upgrade() -> None:
    # the operators there are today keep working as operators; supervisors are named afterwards
    op.add_column("operators", sa.Column("role", sa.Text, nullable=False, server_default="operator"), schema=SCHEMA)
    op.create_check_constraint(
        "ck_operators_role_known", "operators", "role in ('operator','supervisor')", schema=SCHEMA)
    op.create_table(
        "operator_sessions",
        sa.Column("key_hash", sa.Text, primary_key=True),
        sa.Column("operator_id", sa.BigInteger,
                  sa.ForeignKey(f"{SCHEMA}.operators.id", ondelete="CASCADE")),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        schema=SCHEMA,
    )
    # the purge deletes by last use; revoking an operator's sessions looks them up by operator
    op.create_index("ix_operator_sessions_last_seen_at", "operator_sessions", ["last_seen_at"], schema=SCHEMA)
    op.create_index("ix_operator_sessions_operator_id", "operator_sessions", ["operator_id"], schema=SCHEMA)
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("login", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    # the lock-out counts recent failures per login and per address
    op.create_index("ix_login_failures_login", "login_failures", ["login", "failed_at"], schema=SCHEMA)
    op.create_index("ix_login_failures_address", "login_failures", ["address", "failed_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("login_failures", schema=SCHEMA)
    op.drop_table("operator_sessions", schema=SCHEMA)
    op.drop_constraint("ck_operators_role_known", "operators", schema=SCHEMA, type_="check")
    op.drop_column("operators", "role", schema=SCHEMA)
