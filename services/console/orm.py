"""Tables of the console schema: operator accounts, the operators' task view, outbox and inbox."""
from sqlalchemy import (
    ARRAY, BigInteger, Boolean, CheckConstraint, Column, DateTime, Identity, Index, Table, Text, Uuid, false, func,
)

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "console"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)  # operator decisions will be published from here
inbox = inbox_table(metadata)

operators = Table(
    "operators",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("login", Text, nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("disabled", Boolean, nullable=False, server_default=false()),
)

# A copy of each TaskIssued event (event-carried state): the console never reads the notifier's schema.
tasks = Table(
    "tasks",
    metadata,
    Column("task_id", Uuid, primary_key=True),
    Column("consultation_id", Uuid, nullable=False),
    Column("receipt_no", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("reason", Text),
    Column("due_starts_at", DateTime(timezone=True)),
    Column("due_ends_at", DateTime(timezone=True)),
    Column("consultant_name", Text, nullable=False),
    Column("contact_method", Text, nullable=False),
    Column("phone", Text),
    Column("email", Text),
    Column("category", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("urls", ARRAY(Text), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    CheckConstraint("status in ('open','done')", name="status_known"),
)
Index("ix_tasks_open_due", tasks.c.due_starts_at, tasks.c.issued_at, postgresql_where=tasks.c.status == "open")
