"""Tables of the notifier schema: the consultation copy, notifications, tasks, pending tasks,
its outbox and inbox."""
from sqlalchemy import (
    ARRAY, BigInteger, CheckConstraint, Column, Date, DateTime, Identity, Integer, PrimaryKeyConstraint,
    Table, Text, UniqueConstraint, Uuid, func,
)

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
)

# One row per (consultation, kind) of e-mail; it moves sending -> sent (guarantee 4).
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
    UniqueConstraint("consultation_id", "kind", name="uq_notifications_consultation_kind"),
    CheckConstraint("status in ('sending','sent')", name="status_known"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", Uuid, primary_key=True),
    Column("consultation_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("booking_id", Uuid, unique=True),  # one call task per booking
    Column("reason", Text),
    Column("due_starts_at", DateTime(timezone=True)),
    Column("due_ends_at", DateTime(timezone=True)),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("consultation_id", "kind", name="uq_tasks_consultation_kind"),
    CheckConstraint("kind in ('call','email','review','decline')", name="kind_known"),
)

# A task whose consultation copy has not arrived yet; issued when it does.
pending = Table(
    "pending",
    metadata,
    Column("consultation_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("booking_id", Uuid),
    Column("reason", Text),
    Column("due_starts_at", DateTime(timezone=True)),
    Column("due_ends_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("consultation_id", "kind"),
    CheckConstraint("kind in ('call','email','review','decline')", name="kind_known"),
)
