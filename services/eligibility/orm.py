"""Tables of the eligibility schema: the member registry, verdicts, outbox and inbox."""
from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, Table, Text, Uuid, func

from shared.db import service_metadata
from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "eligibility"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

# Member numbers are stored in their normalised form (registry_csv.normalize_member_no), so a
# look-up by a normalised number is an equality.
members = Table(
    "members",
    metadata,
    Column("member_no", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("name_kana", Text, nullable=False),
    Column("prefecture", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status in ('active','withdrawn')", name="status_known"),
)

institutions = Table(
    "institutions",
    metadata,
    Column("institution_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("name_normalized", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("prefecture", Text, nullable=False),
    # The import refuses a number that is not in the members file; the keys back that rule.
    Column("founder_member_no", Text, ForeignKey(members.c.member_no)),
    Column("manager_member_no", Text, ForeignKey(members.c.member_no)),
    CheckConstraint("kind in ('medical','care')", name="kind_known"),
    CheckConstraint("founder_member_no is not null or manager_member_no is not null", name="linked"),
)
for _column in ("name_normalized", "founder_member_no", "manager_member_no"):
    Index(f"ix_institutions_{_column}", institutions.c[_column])

# One verdict per consultation: the primary key backs "judged once" under redelivery.
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
    CheckConstraint("outcome in ('confirmed','rejected','review_requested')", name="outcome_known"),
)
