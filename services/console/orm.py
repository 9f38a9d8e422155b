"""Tables of the console schema: operator accounts and their sessions, failed log-ins, the
operators' task view and what they do with it (claims and their history, call outcomes, review
decisions, notes), the reviews' reasons, the e-mails the notifier sent, phone entries and intake's
answers to them, who saw whose personal data, outbox and inbox."""
from sqlalchemy import (
    ARRAY, BigInteger, Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, Identity, Index, Integer, Table,
    Text, Uuid, false, func,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "console"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)  # call outcomes, review decisions and phone submissions leave from here
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
    Column("booking_id", Uuid),  # a call task's booking; None for other kinds (and older tasks)
    Column("attempt", Integer, nullable=False, server_default="1"),
    # who works on it, until when nobody else may take it over (services/console/claims.py)
    Column("claimed_by", BigInteger, ForeignKey("operators.id", ondelete="SET NULL")),
    Column("claimed_until", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_by", BigInteger, ForeignKey("operators.id", ondelete="SET NULL")),
    Column("contact_expected_from", Date),  # the day promised to the consultant (None: older tasks)
    # what the task page shows about the consultation; NULL on older tasks (console_0007)
    Column("name_kana", Text),
    Column("role", Text),
    Column("member_no", Text),
    Column("institution_name", Text),
    Column("institution_prefecture", Text),
    Column("manager_member_no", Text),
    Column("preferred_time", Text),
    Column("urgent", Boolean),
    Column("posts", JSONB),  # [{url, platform}]
    CheckConstraint("status in ('open','done')", name="status_known"),
)
Index("ix_tasks_open_due", tasks.c.due_starts_at, tasks.c.issued_at, postgresql_where=tasks.c.status == "open")
Index("ix_tasks_consultation_id", tasks.c.consultation_id)

# Every claim that succeeded (claims.py, in the claim's transaction), extensions included: the
# supervisors count each operator's claimed tasks from here, so a claim released, left to expire
# or taken over later still counts for the operator who made it (desk_figures.WORK).
claims = Table(
    "claims",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("task_id", Uuid, ForeignKey("tasks.task_id", ondelete="CASCADE"), nullable=False),
    Column("operator_id", BigInteger, ForeignKey("operators.id"), nullable=False),  # disabled, never deleted
    Column("claimed_at", DateTime(timezone=True), nullable=False),
)
Index("ix_claims_claimed_at", claims.c.claimed_at)

# The outcome of each call task: one per task, whatever is clicked twice (primary key).
call_outcomes = Table(
    "call_outcomes",
    metadata,
    Column("task_id", Uuid, ForeignKey("tasks.task_id"), primary_key=True),
    Column("consultation_id", Uuid, nullable=False),
    Column("receipt_no", Text, nullable=False),
    Column("booking_id", Uuid, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("operator_id", BigInteger, ForeignKey("operators.id"), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("outcome in ('reached','no_answer','wrong_number')", name="outcome_known"),
)
Index("ix_call_outcomes_consultation_id", call_outcomes.c.consultation_id, call_outcomes.c.recorded_at)

# What operators wrote about a case: personal data, kept here and never published (only a length).
task_notes = Table(
    "task_notes",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("task_id", Uuid, ForeignKey("tasks.task_id"), nullable=False),
    Column("consultation_id", Uuid, nullable=False),
    Column("operator_id", BigInteger, ForeignKey("operators.id"), nullable=False),
    Column("note", Text, nullable=False),
    Column("written_at", DateTime(timezone=True), nullable=False),
)
Index("ix_task_notes_consultation_id", task_notes.c.consultation_id, task_notes.c.written_at)

# Why eligibility asked for a review, and the registry entries close to what was given
# (eligibility.review_requested.v1), for the operator who decides.
reviews = Table(
    "reviews",
    metadata,
    Column("consultation_id", Uuid, primary_key=True),
    Column("receipt_no", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("candidates", JSONB, nullable=False, server_default="[]"),  # [{ref, name, why}]
    Column("requested_at", DateTime(timezone=True), nullable=False),
)

# The console's decision on each review: one per consultation (eligibility applies the first anyway).
review_decisions = Table(
    "review_decisions",
    metadata,
    Column("consultation_id", Uuid, primary_key=True),
    Column("task_id", Uuid, ForeignKey("tasks.task_id"), nullable=False),
    Column("operator_id", BigInteger, ForeignKey("operators.id"), nullable=False),
    Column("decision", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("decision in ('confirm','reject')", name="decision_known"),
)

# Each e-mail the notifier sent to a consultant (notification.email_sent.v1), for the history on
# the task page: once per consultation, kind and attempt, as the notifier sends it (a copy of the
# event, or the same e-mail announced again, adds nothing). sent_at: the event's occurred_at.
emails_sent = Table(
    "emails_sent",
    metadata,
    Column("consultation_id", Uuid, primary_key=True),
    Column("kind", Text, primary_key=True),  # the notifier's KIND: acknowledgement, callback_booked ...
    Column("attempt", Integer, primary_key=True),
    Column("receipt_no", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)

# A consultation an operator entered on the phone, kept only to show it again if intake refuses
# it and to read the status code out once (services/console/phone_entry.py says for how long).
phone_submissions = Table(
    "phone_submissions",
    metadata,
    Column("submission_id", Uuid, primary_key=True),
    Column("operator_id", BigInteger, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False),
    Column("typed", JSONB, nullable=False),  # the form's fields as typed
    Column("status_code", Text),  # in clear until erased; only its hash travels
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("code_shown_at", DateTime(timezone=True)),
)
Index("ix_phone_submissions_submitted_at", phone_submissions.c.submitted_at)

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
    Column("errors", JSONB(none_as_null=True)),  # [{field, code, message}] when refused; SQL NULL when received
    Column("answered_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("(receipt_no is null) <> (errors is null)", name="received_or_refused"),
)

# Who saw a consultation's personal data (name, contact, summary), when, and on what: one row per
# consultation shown by a page or an API answer, written in the same request (data_views.py);
# for supervisors (/audit), kept console_data_views_keep_days. Never the data itself.
data_views = Table(
    "data_views",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("operator_id", BigInteger, ForeignKey("operators.id"), nullable=False),  # operators are disabled, not deleted
    Column("consultation_id", Uuid, nullable=False),
    Column("receipt_no", Text, nullable=False),
    Column("what", Text, nullable=False),  # data_views.WHAT: queue, task, api_tasks ...
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_data_views_at", data_views.c.at, data_views.c.id)
Index("ix_data_views_receipt_no", data_views.c.receipt_no, data_views.c.at, data_views.c.id)
Index("ix_data_views_operator_id", data_views.c.operator_id, data_views.c.at, data_views.c.id)
