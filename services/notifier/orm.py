"""Tables of the notifier schema: the consultation copy, notifications and their possible
duplicates, tasks, pending tasks, unschedulable callbacks, its outbox and inbox."""
from sqlalchemy import (
    ARRAY, BigInteger, Boolean, CheckConstraint, Column, Date, DateTime, false, func, Identity, Index,
    Integer, PrimaryKeyConstraint, Table, Text, UniqueConstraint, Uuid,
)

from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "notifier"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

# Event-carried copy of ConsultationReceived: what an e-mail or a task needs to say.
consultations = Table(
    "consultations",
    metadata,
    Column("consultation_id", Uuid, primary_key=True),
    Column("receipt_no", Text, nullable=False),
    Column("consultant_name", Text, nullable=False),
    Column("contact_method", Text, nullable=False),
    Column("phone", Text),
    Column("email", Text),
    Column("category", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("urls", ARRAY(Text), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("contact_expected_from", Date, nullable=False),
    # the desk was busy when received: the acknowledgement says contact may take several days
    Column("contact_may_take_longer", Boolean, nullable=False, server_default=false()),
    # the consultant asked for an urgent callback: the acknowledgement names 110 and 119 first
    Column("urgent", Boolean, nullable=False, server_default=false()),
    # what an operator's task shows about the consultation; NULL on copies kept before (notifier_0006)
    Column("name_kana", Text),
    Column("role", Text),
    Column("member_no", Text),
    Column("institution_name", Text),
    Column("institution_prefecture", Text),
    Column("manager_member_no", Text),
    Column("preferred_time", Text),
    Column("posts", JSONB),  # [{url, platform}]
)

# One row per (consultation, kind, attempt) of e-mail; it moves sending -> sent (guarantee 4), or
# -> failed when the server refused it for good (a bounced task then reaches the consultant).
# `attempt` is the booked callback's attempt for a callback_booked mail; 1 for every other kind.
# handed_over_at: the mail was handed to SMTP then and its outcome is not on record yet; still
# set on `sending` when the mail is tried again, it makes that try a possible duplicate.
# deferrals: 4xx answers naming the recipient so far; failure: the SMTP code of a failed mail.
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("consultation_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("message_id", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("handed_over_at", DateTime(timezone=True)),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("deferrals", Integer, nullable=False, server_default="0"),
    Column("failed_at", DateTime(timezone=True)),
    Column("failure", Text),
    UniqueConstraint("consultation_id", "kind", "attempt", name="uq_notifications_consultation_kind_attempt"),
    CheckConstraint("status in ('sending','sent','failed')", name="status_known"),
)

# An e-mail sent again after a hand-over whose outcome was never recorded (a crash, a connection
# lost during DATA): the consultant may have it twice. Kept for supervisors; ids only.
possible_duplicates = Table(
    "possible_duplicates",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("consultation_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("receipt_no", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("handed_over_at", DateTime(timezone=True), nullable=False),  # the earlier hand-over
    Column("detected_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

TASK_KINDS = "kind in ('call','email','review','decline','unreachable','unschedulable','bounced')"

# One task per cause: per (consultation, kind, attempt), and one call task per booking attempt;
# a `bounced` task per failed mail: its kind in `reason`, its attempt in `attempt`.
# `attempt` is a call task's attempt of its booking (a no-answer books the next one); 1 otherwise.
tasks = Table(
    "tasks",
    metadata,
    Column("task_id", Uuid, primary_key=True),
    Column("consultation_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("booking_id", Uuid),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("reason", Text),
    Column("due_starts_at", DateTime(timezone=True)),
    Column("due_ends_at", DateTime(timezone=True)),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("booking_id", "attempt", name="uq_tasks_booking_attempt"),
    CheckConstraint(TASK_KINDS, name="kind_known"),
)
Index("uq_tasks_consultation_kind_attempt", tasks.c.consultation_id, tasks.c.kind, tasks.c.attempt,
      unique=True, postgresql_where=tasks.c.kind != "bounced")
Index("uq_tasks_bounced_mail", tasks.c.consultation_id, tasks.c.reason, tasks.c.attempt,
      unique=True, postgresql_where=tasks.c.kind == "bounced")
Index("ix_tasks_consultation", tasks.c.consultation_id)

# A task whose consultation copy has not arrived yet; issued when it does.
pending = Table(
    "pending",
    metadata,
    Column("consultation_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("booking_id", Uuid),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("reason", Text),
    Column("due_starts_at", DateTime(timezone=True)),
    Column("due_ends_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consultation_id", "kind", "attempt"),
    CheckConstraint(TASK_KINDS, name="kind_known"),
)

# Consultations the scheduler found no slot for: they wait for an operator, not for an event.
unschedulable_callbacks = Table(
    "unschedulable_callbacks",
    metadata,
    Column("consultation_id", Uuid, primary_key=True),
    Column("receipt_no", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
