"""Eligibility on the real database: the registry import and the verdict use case."""
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.eligibility.orm import inbox, institutions, members, outbox, verdicts
from services.eligibility.registry import import_files, replace_registry
from services.eligibility.registry_csv import InstitutionRow, MemberRow, parse_institutions, parse_members
from services.eligibility.verdicting import CONSUMER, judge
from shared import events as ev
from shared.db import make_engine, make_sessions

DEMO = Path(__file__).resolve().parents[2] / "demo"
MEMBERS_HEADER = "member_no,name,name_kana,prefecture,status\n"
INSTITUTIONS_HEADER = "institution_id,name,kind,prefecture,founder_member_no,manager_member_no\n"


@pytest.fixture
async def sessions(desk):
    engine = make_engine(desk, pool_size=2)
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture
async def demo_registry(sessions):
    await replace_registry(
        sessions,
        parse_members((DEMO / "members.csv").read_text("utf-8")),
        parse_institutions((DEMO / "institutions.csv").read_text("utf-8")),
    )
    return sessions


async def registry_of(sessions) -> tuple[set[str], set[str]]:
    async with sessions() as session:
        member_nos = set(await session.scalars(select(members.c.member_no)))
        institution_ids = set(await session.scalars(select(institutions.c.institution_id)))
    return member_nos, institution_ids


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


# --- registry import -------------------------------------------------------------------------

async def test_import_replaces_the_whole_registry(sessions, tmp_path, capsys):
    assert await import_files(str(DEMO / "members.csv"), str(DEMO / "institutions.csv")) == 0
    assert "会員 8 件、医療機関・施設 6 件を取り込みました" in capsys.readouterr().out
    assert len((await registry_of(sessions))[0]) == 8

    # A BOM (Excel's "CSV UTF-8"), full-width numbers: stored in their normalised form.
    members_csv = write(tmp_path, "members.csv", "\ufeff" + MEMBERS_HEADER
                        + "Ｍ１００１,新規 一,シンキ ハジメ,京都府,active\nM1002,新規 二,シンキ フタバ,京都府,withdrawn\n")
    institutions_csv = write(tmp_path, "institutions.csv", INSTITUTIONS_HEADER
                             + "I9001,新規 医院,medical,京都府,m1001,M1002\n")
    assert await import_files(members_csv, institutions_csv) == 0
    assert "会員 2 件、医療機関・施設 1 件を取り込みました" in capsys.readouterr().out
    assert await registry_of(sessions) == ({"M1001", "M1002"}, {"I9001"})
    async with sessions() as session:
        row = (await session.execute(select(institutions))).one()
    assert (row.name_normalized, row.founder_member_no, row.manager_member_no) == ("新規医院", "M1001", "M1002")


async def test_a_broken_file_changes_nothing(demo_registry, tmp_path, capsys):
    before = await registry_of(demo_registry)
    members_csv = write(tmp_path, "members.csv", MEMBERS_HEADER
                        + "M2001,壊れ 一,コワレ ハジメ,東京都,active\nM2002,壊れ 二,コワレ フタバ,東京都,gone\n")
    institutions_csv = write(tmp_path, "institutions.csv", INSTITUTIONS_HEADER + "I2001,壊れ医院,medical,東京都,M2001,\n")
    assert await import_files(members_csv, institutions_csv) == 2
    assert f"{members_csv}:3 status invalid_status" in capsys.readouterr().err
    assert await registry_of(demo_registry) == before


async def test_an_institution_naming_a_non_member_is_refused_with_its_line(demo_registry, tmp_path, capsys):
    before = await registry_of(demo_registry)
    members_csv = write(tmp_path, "members.csv", MEMBERS_HEADER + "M3001,会員 一,カイイン ハジメ,東京都,active\n")
    institutions_csv = write(tmp_path, "institutions.csv", INSTITUTIONS_HEADER
                             + "I3001,正しい医院,medical,東京都,M3001,\n\nI3002,誤り医院,care,東京都,M3001,M3999\n")
    assert await import_files(members_csv, institutions_csv) == 2
    err = capsys.readouterr().err
    assert f"{institutions_csv}:4 manager_member_no unknown_member" in err
    assert "M3999" in err
    assert await registry_of(demo_registry) == before


@pytest.mark.parametrize("content, encoding", [(None, None), (MEMBERS_HEADER + "M1,見本,ミホン,東京都,active\n", "shift_jis")])
async def test_an_unreadable_file_is_refused(demo_registry, tmp_path, capsys, content, encoding):
    before = await registry_of(demo_registry)
    members_csv = str(tmp_path / "missing.csv") if content is None else write(tmp_path, "sjis.csv", content, encoding)
    assert await import_files(members_csv, str(DEMO / "institutions.csv")) == 2
    assert members_csv in capsys.readouterr().err
    assert await registry_of(demo_registry) == before


async def test_replace_registry_checks_links_before_the_database(demo_registry):
    from services.eligibility.registry_csv import RegistryFileError

    before = await registry_of(demo_registry)
    with pytest.raises(RegistryFileError) as refused:
        await replace_registry(
            demo_registry, [MemberRow("M4001", "会員", "カイイン", "東京都", "active")],
            [InstitutionRow("I4001", "医院", "medical", "東京都", "M4002", None)],
        )
    assert [(e.field, e.code) for e in refused.value.errors] == [("founder_member_no", "unknown_member")]
    assert await registry_of(demo_registry) == before


# --- verdicts --------------------------------------------------------------------------------

def received(role: str, member_no: str | None = None, **institution) -> tuple[ev.ConsultationReceived, ev.Envelope]:
    consultation_id = uuid.uuid4()
    event = ev.ConsultationReceived(
        consultation_id=consultation_id, receipt_no=f"PH-261124-{consultation_id.int % 10**6:06d}",
        channel="web", received_at=datetime.now(timezone.utc), contact_expected_from=date(2026, 11, 25),
        consultant=ev.Consultant(name="試験 花子", name_kana="シケン ハナコ", role=role, member_no=member_no),
        institution=ev.InstitutionInfo(**institution),
        contact=ev.Contact(method="email", email="consultant@example.invalid"),
        category="online", summary="口コミサイトへの書き込み", urls=["https://example.invalid/review/1"],
    )
    return event, ev.wrap(event, consultation_id)


async def written(sessions, consultation_id: uuid.UUID):
    async with sessions() as session:
        rows = (await session.execute(select(verdicts).where(verdicts.c.consultation_id == consultation_id))).all()
        events = (await session.execute(select(outbox).where(outbox.c.correlation_id == consultation_id))).all()
    return rows, events


@pytest.mark.parametrize("role, member_no, institution, outcome, reason, basis, institution_id, routing_key", [
    ("member", "ｍ０００２", {}, "confirmed", "active_member", "M0002", None, "eligibility.confirmed.v1"),
    ("medical_staff", None, {"name": "見本 総合病院", "prefecture": "大阪府", "manager_member_no": "M0003"},
     "confirmed", "institution_of_active_member", "M0003", "I0002", "eligibility.confirmed.v1"),
    ("care_staff", None, {"name": "見本デイサービスセンター", "manager_member_no": "M0004"},
     "confirmed", "institution_of_active_member", "M0004", "I0004", "eligibility.confirmed.v1"),
    ("member", "M0005", {}, "rejected", "withdrawn_member", "M0005", None, "eligibility.rejected.v1"),
    ("member", "M9999", {}, "review_requested", "unknown_member", "M9999", None, "eligibility.review_requested.v1"),
    ("care_staff", None, {"name": "試験内科医院", "manager_member_no": "M0006"},
     "review_requested", "institution_kind_mismatch", "M0006", "I0005", "eligibility.review_requested.v1"),
])
async def test_judge_writes_the_verdict_and_its_event(demo_registry, role, member_no, institution, outcome,
                                                     reason, basis, institution_id, routing_key):
    event, envelope = received(role, member_no, **institution)
    await judge(event, envelope, demo_registry)

    rows, events = await written(demo_registry, event.consultation_id)
    assert [(r.receipt_no, r.outcome, r.reason, r.basis_member_no, r.institution_id) for r in rows] == [
        (event.receipt_no, outcome, reason, basis, institution_id)]
    assert [e.routing_key for e in events] == [routing_key]
    published = ev.Envelope.model_validate_json(events[0].body)
    assert published.correlation_id == event.consultation_id
    assert published.data["reason"] == reason and published.data["receipt_no"] == event.receipt_no
    if outcome == "confirmed":
        assert published.data["contact_expected_from"] == "2026-11-25"


async def test_judging_twice_leaves_one_verdict_and_one_event(demo_registry):
    event, envelope = received("member", "M0001")
    await judge(event, envelope, demo_registry)
    await judge(event, envelope, demo_registry)  # redelivery: the inbox recognises it
    await judge(event, ev.wrap(event, event.consultation_id), demo_registry)  # published twice: the verdict row

    rows, events = await written(demo_registry, event.consultation_id)
    assert len(rows) == 1 and len(events) == 1
    async with demo_registry() as session:
        seen = await session.scalar(select(func.count()).select_from(inbox).where(
            inbox.c.consumer == CONSUMER, inbox.c.event_id == envelope.event_id))
    assert seen == 1
