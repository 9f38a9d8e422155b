"""Tables of the console schema: operator accounts and their sessions, failed log-ins, the
operators' task view, intake's answers to phone submissions, outbox and inbox."""
from sqlalchemy import (
    ARRAY, BigInteger, Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, Identity, Index, Table, Text,
    Uuid, false, func,
)
from sqlalchemy.dialects.postgresql import JSONB

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
    Column("role", Text, nullable=False, server_default="operator"),
    CheckConstraint("role in ('operator','supervisor')", name="role_known"),
)

# One row per browser session. The cookie holds a random token; only its keyed hash is kept,
# so a copy of this table opens no session. No operator yet: the log-in form's session.
operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("key_hash", Text, primary_key=True),
    Column("operator_id", BigInteger, ForeignKey("operators.id", ondelete="CASCADE")),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("address", Text, nullable=False),
)
Index("ix_operator_sessions_last_seen_at", operator_sessions.c.last_seen_at)
Index("ix_operator_sessions_operator_id", operator_sessions.c.operator_id)

# Log-in attempts not known to have succeeded: written before the password is checked and
# removed when it matches, so parallel guesses count against the lock-out too.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("login", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
)
Index("ix_login_failures_login", login_failures.c.login, login_failures.c.failed_at)
Index("ix_login_failures_address", login_failures.c.address, login_failures.c.failed_at)

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

# Intake's answer to each consultation an operator entered on the phone (consultation.submitted.v1):
# the receipt number to read back to the caller, or the fields to correct. One row per submission.
phone_answers = Table(
    "phone_answers",
    metadata,
    Column("submission_id", Uuid, primary_key=True),
    Column("operator_id", Text, nullable=False),
    Column("consultation_id", Uuid),
    Column("receipt_no", Text),
    Column("contact_expected_from", Date),
    Column("contact_may_take_longer", Boolean, nullable=False, server_default=false()),
    Column("errors", JSONB),  # [{field, code, message}] when refused
    Column("answered_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("(receipt_no is null) <> (errors is null)", name="received_or_refused"),
)
