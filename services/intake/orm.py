"""Tables of the intake schema: consultations, the keys they were submitted with, the
scheduler's availability, outbox and inbox."""
from sqlalchemy import (
    ARRAY, Boolean, CheckConstraint, Column, Date, DateTime, Index, Integer, LargeBinary, Sequence,
    SmallInteger, Table, Text, Uuid, false, func,
)

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "intake"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
receipt_numbers = Sequence("receipt_no_seq", metadata=metadata, start=1)

consultations = Table(
    "consultations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("receipt_no", Text, nullable=False, unique=True),
    Column("status_token_hash", LargeBinary, nullable=False),
    Column("channel", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("contact_expected_from", Date, nullable=False),
    Column("consultant_name", Text, nullable=False),
    Column("consultant_name_kana", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("member_no", Text),
    Column("institution_name", Text),
    Column("institution_prefecture", Text),
    Column("manager_member_no", Text),
    Column("contact_method", Text, nullable=False),
    Column("phone", Text),
    Column("email", Text),
    Column("category", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("urls", ARRAY(Text), nullable=False),
    Column("status", Text, nullable=False),
    Column("status_changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("slot_starts_at", DateTime(timezone=True)),
    Column("slot_ends_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("attempt", Integer, nullable=False, server_default="1"),  # the call attempt of the slot shown
    # promised later than the calendar alone would, because the desk was busy when received
    Column("contact_may_take_longer", Boolean, nullable=False, server_default=false()),
    # the console's submission a phone consultation came from: one consultation per submission
    Column("submission_id", Uuid, unique=True),
)

# The key a web or API submission was sent with, for a day: a repeat gets the same receipt
# (services/intake/idempotency.py). Neither the key nor the status code is kept in clear.
submission_keys = Table(
    "submission_keys",
    metadata,
    Column("key_hash", LargeBinary, primary_key=True),
    Column("form_hash", LargeBinary, nullable=False),
    Column("consultation_id", Uuid, nullable=False),  # no foreign key: a consultation may be erased alone
    Column("sealed_status_token", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_submission_keys_created_at", submission_keys.c.created_at)

# The scheduler's availability (schedule.availability_changed.v1), one row: the honest promise.
availability = Table(
    "availability",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("first_free_day", Date, nullable=False),
    Column("first_free_email_day", Date),  # replies by e-mail: their own capacity
    Column("busy", Boolean, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)
