"""scheduler: replies by e-mail, booked on a day (its own daily capacity) rather than in a slot

Revision ID: scheduler_0005
"""
import sqlalchemy as sa
from alembic import op

revision = "scheduler_0005"
down_revision = "scheduler_0004"
SCHEMA = "scheduler"


def upgrade() -> None:
    op.create_table(
        "email_days",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("booked", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("day", name="pk_email_days"),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_email_days_booked_within_capacity"),
        schema=SCHEMA,
    )
    op.alter_column("bookings", "slot_id", nullable=True, schema=SCHEMA)
    op.add_column("bookings", sa.Column("email_day", sa.Date, sa.ForeignKey(f"{SCHEMA}.email_days.day",
                                                                           name="fk_bookings_email_day_email_days")),
                  schema=SCHEMA)
    op.execute(f"alter table {SCHEMA}.bookings add constraint ck_bookings_a_slot_or_an_email_day "
               "check ((slot_id is null) <> (email_day is null))")


def downgrade() -> None:
    if op.get_bind().scalar(sa.text(f"select count(*) from {SCHEMA}.bookings where email_day is not null")):
        raise RuntimeError("scheduler.bookings holds replies by e-mail, which have no slot: book them again "
                           "as calls or delete them before downgrading below scheduler_0005")
    op.execute(f"alter table {SCHEMA}.bookings drop constraint ck_bookings_a_slot_or_an_email_day")
    op.drop_column("bookings", "email_day", schema=SCHEMA)
    op.alter_column("bookings", "slot_id", nullable=False, schema=SCHEMA)
    op.drop_table("email_days", schema=SCHEMA)
