"""eligibility: the registry keeps the rules' keys (members.name_key, kana_key; institutions.name_normalized
by rules.institution_key, with a trigram index for near candidates), and institutions no longer need a
member behind them (no keys to members, no `linked` check)

Revision ID: eligibility_0002
"""
import sqlalchemy as sa
from alembic import op

revision = "eligibility_0002"
down_revision = "eligibility_0001"
SCHEMA = "eligibility"


def upgrade() -> None:
    for role in ("founder", "manager"):
        op.drop_constraint(op.f(f"fk_institutions_{role}_member_no_members"), "institutions", schema=SCHEMA,
                           type_="foreignkey")
    op.drop_constraint(op.f("ck_institutions_linked"), "institutions", schema=SCHEMA, type_="check")

    for column in ("name_key", "kana_key"):
        op.add_column("members", sa.Column(column, sa.Text), schema=SCHEMA)
    _keys_of_the_registry_in_place()
    for column in ("name_key", "kana_key"):
        op.alter_column("members", column, nullable=False, schema=SCHEMA)
        op.create_index(f"ix_members_{column}", "members", [column], schema=SCHEMA)

    op.execute("create extension if not exists pg_trgm")
    op.create_index("ix_institutions_name_normalized_trgm", "institutions", ["name_normalized"], schema=SCHEMA,
                    postgresql_using="gin", postgresql_ops={"name_normalized": "gin_trgm_ops"})


def _keys_of_the_registry_in_place() -> None:
    """The registry imported before this revision gets its keys now, by the rules of today (the
    next import writes them again), so verdicts by name work before anyone imports again."""
    from services.eligibility import rules

    bind = op.get_bind()
    rows = bind.execute(sa.text(f"select member_no, name, name_kana from {SCHEMA}.members")).all()
    if rows:
        bind.execute(sa.text(f"update {SCHEMA}.members set name_key = :n, kana_key = :k where member_no = :m"),
                     [{"m": m, "n": rules.person_name(name), "k": rules.kana(kana)} for m, name, kana in rows])
    rows = bind.execute(sa.text(f"select institution_id, name from {SCHEMA}.institutions")).all()
    if rows:
        bind.execute(sa.text(f"update {SCHEMA}.institutions set name_normalized = :n where institution_id = :i"),
                     [{"i": i, "n": rules.institution_key(name)} for i, name in rows])
