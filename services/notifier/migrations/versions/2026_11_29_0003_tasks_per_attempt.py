"""notifier: one call task per booking attempt; the unreachable and unschedulable task kinds

Revision ID: notifier_0003
"""
import sqlalchemy as sa
from alembic import op

revision = "notifier_0003"
down_revision = "notifier_0002"
SCHEMA = "notifier"
TASK_KINDS = "kind in ('call','email','review','decline','unreachable','unschedulable')"
OLD_TASK_KINDS = "kind in ('call','email','review','decline')"


def upgrade() -> None:
    # tasks and orders issued before this revision are for the first attempt
    for table in ("tasks", "pending"):
        op.add_column(table, sa.Column("attempt", sa.Integer, nullable=False, server_default="1"), schema=SCHEMA)
    op.execute(f"""alter table {SCHEMA}.tasks
        drop constraint uq_tasks_consultation_kind, drop constraint uq_tasks_booking_id,
        add constraint uq_tasks_consultation_kind_attempt unique (consultation_id, kind, attempt),
        add constraint uq_tasks_booking_attempt unique (booking_id, attempt),
        drop constraint ck_tasks_kind_known, add constraint ck_tasks_kind_known check ({TASK_KINDS})""")
    op.execute(f"""alter table {SCHEMA}.pending
        drop constraint pk_pending, add constraint pk_pending primary key (consultation_id, kind, attempt),
        drop constraint ck_pending_kind_known, add constraint ck_pending_kind_known check ({TASK_KINDS})""")


def downgrade() -> None:
    # refuses while tasks of a later attempt or of the new kinds exist: they have no place in the old model
    op.execute(f"""alter table {SCHEMA}.pending
        drop constraint pk_pending, add constraint pk_pending primary key (consultation_id, kind),
        drop constraint ck_pending_kind_known, add constraint ck_pending_kind_known check ({OLD_TASK_KINDS})""")
    op.execute(f"""alter table {SCHEMA}.tasks
        drop constraint uq_tasks_consultation_kind_attempt, drop constraint uq_tasks_booking_attempt,
        add constraint uq_tasks_consultation_kind unique (consultation_id, kind),
        add constraint uq_tasks_booking_id unique (booking_id),
        drop constraint ck_tasks_kind_known, add constraint ck_tasks_kind_known check ({OLD_TASK_KINDS})""")
    for table in ("tasks", "pending"):
        op.drop_column(table, "attempt", schema=SCHEMA)
