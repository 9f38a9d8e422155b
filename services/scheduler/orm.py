"""Tables of the scheduler schema: callback slots, the roster, e-mail days, bookings and their call
attempts, outbox and inbox."""
from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, Identity, Integer,
    PrimaryKeyConstraint, SmallInteger, Table, Text, Uuid, false,
)

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "scheduler"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

# One row per callback slot; `booked` only moves through a conditional update, and the CHECK
# is the last line of defence against over-booking.
slots = Table(
    "slots",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("starts_at", DateTime(timezone=True), nullable=False, unique=True),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("booked", Integer, nullable=False, server_default="0"),
    CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
    CheckConstraint("ends_at > starts_at", name="ends_after_start"),
)

# One booking per consultation: the unique constraint backs the inbox against a re-sent verdict.
# It carries the live attempt: `attempt` is the call the operators work on now, in `slot_id`.
# An outcome moves it on (attempts.py): the next attempt in a new slot, or closed at `closed_at`
# as reached, exhausted (no more calls) or unschedulable (no slot for the next call).
BOOKING_STATUSES = ("live", "reached", "exhausted", "unschedulable")
# A reply by e-mail is due on a day, not in a slot: each open day takes `capacity` of them
# (PAYHARA_EMAIL_CAPACITY_PER_DAY, when the day is first booked), through the same kind of
# conditional update as a slot.
email_days = Table(
    "email_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("capacity", Integer, nullable=False),
    Column("booked", Integer, nullable=False, server_default="0"),
    CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("consultation_id", Uuid, nullable=False, unique=True),
    Column("receipt_no", Text, nullable=False),
    Column("slot_id", BigInteger, ForeignKey(slots.c.id), index=True),  # a call's slot
    Column("email_day", Date, ForeignKey(email_days.c.day)),  # or the day a reply by e-mail is due
    Column("booked_at", DateTime(timezone=True), nullable=False),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("status", Text, nullable=False, server_default="live"),
    Column("closed_at", DateTime(timezone=True)),
    # what the first attempt was booked by, so that every next one is booked by it too
    Column("preferred_time", Text, nullable=False, server_default="any"),
    Column("urgent", Boolean, nullable=False, server_default=false()),
    CheckConstraint("attempt >= 1", name="attempt_positive"),
    CheckConstraint("preferred_time in ('morning', 'afternoon', 'any')", name="preferred_time_known"),
    CheckConstraint(f"status in {BOOKING_STATUSES}", name="status_known"),
    CheckConstraint("(slot_id is null) <> (email_day is null)", name="a_slot_or_an_email_day"),
)

# One row per call attempt whose outcome an operator recorded, with the slot it was booked in.
# The primary key is the last line of defence against an outcome applied twice.
attempts = Table(
    "attempts",
    metadata,
    Column("booking_id", Uuid, ForeignKey(bookings.c.id), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("slot_id", BigInteger, ForeignKey(slots.c.id), nullable=False),
    Column("outcome", Text, nullable=False),
    Column("operator_id", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("booking_id", "attempt"),
    CheckConstraint("outcome in ('reached', 'no_answer', 'wrong_number')", name="outcome_known"),
)

# The first free day the scheduler last announced (schedule.availability_changed.v1), one row:
# a new announcement only when it changes.
availability = Table(
    "availability",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("first_free_day", Date, nullable=False),
    Column("first_free_email_day", Date),
    Column("busy", Boolean, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)

# A date's own capacity per slot, set by an operator (`payhara roster set`): it wins over the
# weekly roster of the settings when the day's slots are created, and moves their capacity if
# they exist (never under what is booked).
roster = Table(
    "roster",
    metadata,
    Column("day", Date, primary_key=True),
    Column("capacity", Integer, nullable=False),
    Column("set_by", Text, nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("capacity >= 0", name="capacity_not_negative"),
)
