"""notifier: an e-mail per (consultation, kind, attempt), as the booked-callback mail is sent for
each attempt; e-mails that failed for good (status `failed`, with the SMTP code) and deferrals
counted; the `bounced` task, one per failed mail; the copy remembers an urgent consultation

Revision ID: notifier_0005
"""
import sqlalchemy as sa
from alembic import op

revision = "notifier_0005"
down_revision = "notifier_0004"
SCHEMA = "notifier"
TASK_KINDS = "kind in ('call','email','review','decline','unreachable','unschedulable','bounced')"
OLD_TASK_KINDS = "kind in ('call','email','review','decline','unreachable','unschedulable')"


def upgrade() -> None:
    op.add_column("consultations", sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()),
                  schema=SCHEMA)
    for column in (sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
                   sa.Column("deferrals", sa.Integer, nullable=False, server_default="0"),
                   sa.Column("failed_at", sa.DateTime(timezone=True)),
                   sa.Column("failure", sa.Text)):
        op.add_column("notifications", column, schema=SCHEMA)
    op.execute(f"""alter table {SCHEMA}.notifications
        drop constraint uq_notifications_consultation_kind,
        add constraint uq_notifications_consultation_kind_attempt unique (consultation_id, kind, attempt),
        drop constraint ck_notifications_status_known,
        add constraint ck_notifications_status_known check (status in ('sending','sent','failed'))""")
    # a bounced task is one per failed mail (its kind in `reason`, its attempt); every other
    # kind stays one per (consultation, kind, attempt)
    op.execute(f"""alter table {SCHEMA}.tasks drop constraint uq_tasks_consultation_kind_attempt,
        drop constraint ck_tasks_kind_known, add constraint ck_tasks_kind_known check ({TASK_KINDS})""")
    op.execute(f"""create unique index uq_tasks_consultation_kind_attempt on {SCHEMA}.tasks
        (consultation_id, kind, attempt) where kind <> 'bounced'""")
    op.execute(f"""create unique index uq_tasks_bounced_mail on {SCHEMA}.tasks
        (consultation_id, reason, attempt) where kind = 'bounced'""")
    # a consultation's tasks whatever their kind (the waiting watch, the booked-callback mail)
    op.create_index("ix_tasks_consultation", "tasks", ["consultation_id"], schema=SCHEMA)
    op.execute(f"""alter table {SCHEMA}.pending
        drop constraint ck_pending_kind_known, add constraint ck_pending_kind_known check ({TASK_KINDS})""")


def downgrade() -> None:
    # refuses while failed mails, mails of a later attempt or bounced tasks exist: no place for them
    op.execute(f"""alter table {SCHEMA}.pending
        drop constraint ck_pending_kind_known, add constraint ck_pending_kind_known check ({OLD_TASK_KINDS})""")
    op.drop_index("ix_tasks_consultation", "tasks", schema=SCHEMA)
    op.execute(f"drop index {SCHEMA}.uq_tasks_bounced_mail")
    op.execute(f"drop index {SCHEMA}.uq_tasks_consultation_kind_attempt")
    op.execute(f"""alter table {SCHEMA}.tasks
        add constraint uq_tasks_consultation_kind_attempt unique (consultation_id, kind, attempt),
        drop constraint ck_tasks_kind_known, add constraint ck_tasks_kind_known check ({OLD_TASK_KINDS})""")
    op.execute(f"""alter table {SCHEMA}.notifications
        drop constraint uq_notifications_consultation_kind_attempt,
        add constraint uq_notifications_consultation_kind unique (consultation_id, kind),
        drop constraint ck_notifications_status_known,
        add constraint ck_notifications_status_known check (status in ('sending','sent'))""")
    for column in ("failure", "failed_at", "deferrals", "attempt"):
        op.drop_column("notifications", column, schema=SCHEMA)
    op.drop_column("consultations", "urgent", schema=SCHEMA)
