"""Tables of the eligibility schema: the member registry, verdicts, outbox and inbox."""
from sqlalchemy import Boolean, CheckConstraint, Column, Date, DateTime, Index, Table, Text, Uuid, false, func
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "eligibility"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

# The registry is replaced whole by `payhara members import` (registry.py). Keys are stored in the
# form the eligibility rules compare them in (rules.member_no, person_name, kana, institution_key),
# so a look-up by a key is an equality, or a trigram similarity for near candidates.
members = Table(
    "members",
    metadata,
    Column("member_no", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("name_kana", Text, nullable=False),
    Column("name_key", Text, nullable=False),
    Column("kana_key", Text, nullable=False),
    Column("prefecture", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status in ('active','withdrawn')", name="status_known"),
)
for _column in ("name_key", "kana_key"):
    Index(f"ix_members_{_column}", members.c[_column])

institutions = Table(
    "institutions",
    metadata,
    Column("institution_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("name_normalized", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("prefecture", Text, nullable=False),
    # No keys to members: the institution list can be wider than the membership (a founder or
    # manager who is not a member, or neither given); such an institution gives no eligibility.
    Column("founder_member_no", Text),
    Column("manager_member_no", Text),
    CheckConstraint("kind in ('medical','care')", name="kind_known"),
)
for _column in ("name_normalized", "founder_member_no", "manager_member_no"):
    Index(f"ix_institutions_{_column}", institutions.c[_column])
Index("ix_institutions_name_normalized_trgm", institutions.c.name_normalized, postgresql_using="gin",
      postgresql_ops={"name_normalized": "gin_trgm_ops"})  # near candidates (pg_trgm)

# One verdict per consultation: the primary key backs "judged once" under redelivery. A verdict
# under review keeps its candidates for the operator, and what the scheduler books by, for the
# confirmation an operator's decision makes (decisions.py).
verdicts = Table(
    "verdicts",
    metadata,
    Column("consultation_id", Uuid, primary_key=True),
    Column("receipt_no", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("basis_member_no", Text),
    Column("institution_id", Text),
    Column("decided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("candidates", JSONB, nullable=False, server_default="[]"),
    Column("contact_expected_from", Date),
    Column("urgent", Boolean, nullable=False, server_default=false()),
    Column("preferred_time", Text, nullable=False, server_default="any"),
    Column("contact_method", Text, nullable=False, server_default="phone"),
    CheckConstraint("outcome in ('confirmed','rejected','review_requested')", name="outcome_known"),
)

# Operators' decisions on verdicts under review (eligibility.decided.v1), every one kept: the first
# for a consultation is applied (the partial unique index backs "first decision wins"), any later
# one is kept with why it was not.
decisions = Table(
    "decisions",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("consultation_id", Uuid, nullable=False),
    Column("operator_id", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("why_not_applied", Text),
    CheckConstraint("decision in ('confirm','reject')", name="decision_known"),
    CheckConstraint("applied = (why_not_applied is null)", name="applied_or_why_not"),
)
Index("ux_decisions_applied", decisions.c.consultation_id, unique=True, postgresql_where=decisions.c.applied)
