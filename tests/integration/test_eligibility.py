"""Eligibility on the real database: the registry import and the verdict use case."""
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from services.eligibility import rules
from services.eligibility.orm import inbox, institutions, members, outbox, verdicts
from services.eligibility.registry import import_files, replace_registry
from services.eligibility.registry_csv import parse_institutions, parse_members
from services.eligibility.verdicting import CONSUMER, judge
from shared import events as ev
from shared.db import make_engine, make_sessions
from shared.messaging import Delivery

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
    """`undecodable`: UTF-8 with a byte neither UTF-8 nor CP932 can read (a lone surrogate escape)."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape") if encoding == "undecodable" else text.encode(encoding))
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


@pytest.mark.parametrize("content, encoding", [(None, None), (MEMBERS_HEADER + "M1,見本\udcff,ミホン,東京都,active\n", "undecodable")])
async def test_an_unreadable_file_is_refused(demo_registry, tmp_path, capsys, content, encoding):
    before = await registry_of(demo_registry)
    members_csv = str(tmp_path / "missing.csv") if content is None else write(tmp_path, "sjis.csv", content, encoding)
    assert await import_files(members_csv, str(DEMO / "institutions.csv")) == 2
    assert members_csv in capsys.readouterr().err
    assert await registry_of(demo_registry) == before


# --- verdicts --------------------------------------------------------------------------------

# demo/members.csv as a consultant types the names: the reading in hiragana
DEMO_NAMES = {"M0001": ("見本 太郎", "みほん たろう"), "M0002": ("架空 花子", "かくう はなこ"),
              "M0003": ("仮名 一郎", "かめい いちろう"), "M0004": ("試験 次郎", "しけん じろう"),
              "M0005": ("例示 三郎", "れいじ さぶろう"), "M0006": ("模擬 良子", "もぎ りょうこ")}


def received(role: str, member_no: str | None = None, person: tuple[str, str] | None = None,
             **institution) -> Delivery[ev.ConsultationReceived]:
    """A received consultation; a member gives the registry's name for the number, unless told."""
    consultation_id = uuid.uuid4()
    person = person or DEMO_NAMES.get(rules.member_no(member_no or ""), ("試験 花子", "しけん はなこ"))
    event = ev.ConsultationReceived(
        consultation_id=consultation_id, receipt_no=f"PH-261124-{consultation_id.int % 10**6:06d}",
        channel="web", received_at=datetime.now(timezone.utc), contact_expected_from=date(2026, 11, 25),
        consultant=ev.Consultant(name=person[0], name_kana=person[1], role=role, member_no=member_no),
        institution=ev.InstitutionInfo(**institution),
        contact=ev.Contact(method="email", email="consultant@example.invalid"),
        category="online", summary="口コミサイトへの書き込み", urls=["https://example.invalid/review/1"],
    )
    return Delivery(ev.wrap(event, consultation_id), event)


def copy_of(delivery: Delivery) -> Delivery:
    """The same consultation published again: another event id."""
    return Delivery(ev.wrap(delivery.event, delivery.event.consultation_id), delivery.event)


async def written(sessions, consultation_id: uuid.UUID):
    async with sessions() as session:
        rows = (await session.execute(select(verdicts).where(verdicts.c.consultation_id == consultation_id))).all()
        events = (await session.execute(select(outbox).where(outbox.c.correlation_id == consultation_id)
                                        .order_by(outbox.c.id))).all()
    return rows, events


async def seen(sessions, delivery: Delivery, consumer: str = CONSUMER) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(inbox).where(
            inbox.c.consumer == consumer, inbox.c.event_id == delivery.envelope.event_id))


@pytest.mark.parametrize("role, member_no, person, institution, outcome, reason, basis, institution_id", [
    ("member", "ｍ０００２", None, {}, "confirmed", "active_member", "M0002", None),
    ("member", "M0002", ("架空　花子", "ｶｸｳ ﾊﾅｺ"), {}, "confirmed", "active_member", "M0002", None),
    ("member", "M0002", ("見本 太郎", "みほん たろう"), {}, "review_requested", "name_mismatch", None, None),
    ("medical_staff", None, None, {"name": "医療法人社団 見本 総合病院", "prefecture": "大阪府"},
     "confirmed", "institution_of_active_member", "M0002", "I0002"),
    ("medical_staff", None, None, {"name": "見本総合病院", "prefecture": "大阪府", "manager_member_no": "M0003"},
     "confirmed", "institution_of_active_member", "M0003", "I0002"),
    ("care_staff", None, None, {"name": "見本デイサービスセンター", "prefecture": "北海道"},
     "confirmed", "institution_of_active_member", "M0004", "I0004"),
    ("member", "M0005", None, {}, "rejected", "withdrawn_member", "M0005", None),
    ("care_staff", None, None, {"name": "模擬介護ステーション", "prefecture": "福岡県"},
     "rejected", "no_member_behind_institution", None, "I0006"),
    ("member", "M9999", None, {}, "review_requested", "member_unknown", None, None),
    ("care_staff", None, None, {"name": "試験内科医院", "prefecture": "青森県"},
     "review_requested", "role_kind_mismatch", None, None),
    ("medical_staff", None, None, {"name": "架空クリニック", "prefecture": "東京都", "manager_member_no": "M0002"},
     "review_requested", "manager_mismatch", None, None),
    ("medical_staff", None, None, {"name": "見本総合クリニック", "prefecture": "大阪府"},
     "review_requested", "institution_unknown", None, None),
])
async def test_judge_writes_the_verdict_and_its_event(demo_registry, role, member_no, person, institution, outcome,
                                                     reason, basis, institution_id):
    delivery = received(role, member_no, person, **institution)
    event = delivery.event
    await judge([delivery], demo_registry)

    rows, events = await written(demo_registry, event.consultation_id)
    assert [(r.receipt_no, r.outcome, r.reason, r.basis_member_no, r.institution_id) for r in rows] == [
        (event.receipt_no, outcome, reason, basis, institution_id)]
    assert [e.routing_key for e in events] == [{"confirmed": "eligibility.confirmed.v1", "rejected":
                                               "eligibility.rejected.v1"}.get(outcome, "eligibility.review_requested.v1")]
    published = ev.Envelope.model_validate_json(events[0].body)
    assert published.correlation_id == event.consultation_id
    assert published.data["reason"] == reason and published.data["receipt_no"] == event.receipt_no
    if outcome == "confirmed":
        assert published.data["contact_expected_from"] == "2026-11-25"
        assert published.data["decided_by"] is None  # the registry decided


async def test_a_review_carries_its_candidates_to_the_operator(demo_registry):
    typo = received("member", "M0020", ("架空 花子", "かくう はなこ"))  # the number mistyped
    unknown = received("medical_staff", None, None, name="見本総合クリニック", prefecture="大阪府")
    await judge([typo, unknown], demo_registry)
    found = []
    for delivery in (typo, unknown):
        rows, events = await written(demo_registry, delivery.event.consultation_id)
        review = ev.EligibilityReviewRequested.model_validate(ev.Envelope.model_validate_json(events[0].body).data)
        assert rows[0].candidates == [c.model_dump() for c in review.candidates]  # kept for the console too
        found.append([(c.ref, c.name, c.why) for c in review.candidates])
    assert found[0] == [("M0002", "架空 花子", "same_name")]
    assert ("I0002", "見本総合病院", "similar_name") in found[1]


async def test_judging_twice_leaves_one_verdict_and_one_event(demo_registry):
    delivery = received("member", "M0001")
    await judge([delivery], demo_registry)
    await judge([delivery], demo_registry)  # redelivery: the inbox recognises it
    await judge([copy_of(delivery)], demo_registry)  # published twice: the verdict row

    rows, events = await written(demo_registry, delivery.event.consultation_id)
    assert len(rows) == 1 and len(events) == 1
    assert await seen(demo_registry, delivery) == 1


async def test_the_confirmation_carries_urgency_preferred_time_and_contact_method_for_the_scheduler(demo_registry):
    plain = received("member", "M0001")  # a consultation from before these fields: the defaults
    pressing = received("member", "M0002")
    pressing = Delivery(pressing.envelope, pressing.event.model_copy(update={"urgent": True, "preferred_time": "afternoon"}))
    await judge([plain, pressing], demo_registry)
    found = []
    for delivery in (plain, pressing):
        _, events = await written(demo_registry, delivery.event.consultation_id)
        found.append(ev.EligibilityConfirmed.model_validate(ev.Envelope.model_validate_json(events[0].body).data))
    assert [(c.urgent, c.preferred_time, c.contact_method) for c in found] == [
        (False, "any", "email"), (True, "afternoon", "email")]


# --- batches ---------------------------------------------------------------------------------

# Every kind of applicant, and numbers shared between applicants (M0003 as member and manager).
MIXED = [
    ("member", "M0001", {}),
    ("member", "ｍ０００３", {}),
    ("member", "M0005", {}),  # withdrawn
    ("member", "M9999", {}),  # unknown
    ("member", None, {}),
    ("medical_staff", None, {"name": "見本総合病院", "prefecture": "大阪府", "manager_member_no": "M0003"}),
    ("medical_staff", None, {"name": "（医社）見本総合病院", "prefecture": "大阪府"}),
    ("medical_staff", None, {"name": "見本総合病院", "manager_member_no": "M0002"}),  # no prefecture: by its founder
    ("care_staff", None, {"name": "架空ケアホーム", "prefecture": "東京都", "manager_member_no": "M0001"}),
    ("care_staff", None, {"name": "架空クリニック", "prefecture": "東京都"}),  # a medical one
    ("care_staff", None, {"name": "模擬介護ステーション", "prefecture": "福岡県"}),  # withdrawn founder
    ("medical_staff", None, {"name": "どこにもない医院", "prefecture": "東京都"}),
    ("medical_staff", None, {"name": "架空クリニック", "prefecture": "東京都", "manager_member_no": "M9998"}),
    ("care_staff", None, {"prefecture": "北海道"}),
]


async def outcomes(sessions, deliveries: list[Delivery]) -> list[tuple]:
    """Each delivery's verdict and its published events, in the deliveries' order."""
    found = []
    for delivery in deliveries:
        rows, events = await written(sessions, delivery.event.consultation_id)
        found.append(([(r.outcome, r.reason, r.basis_member_no, r.institution_id) for r in rows],
                      [e.routing_key for e in events]))
    return found


async def test_a_mixed_batch_gets_the_verdicts_it_would_get_one_by_one(demo_registry):
    alone = [received(role, number, **institution) for role, number, institution in MIXED]
    for delivery in alone:
        await judge([delivery], demo_registry)
    together = [received(role, number, **institution) for role, number, institution in MIXED]
    await judge(together, demo_registry)

    one_by_one = await outcomes(demo_registry, alone)
    assert await outcomes(demo_registry, together) == one_by_one
    assert {verdict[0][1] for verdict, _ in one_by_one} == {
        "active_member", "withdrawn_member", "member_unknown", "member_no_missing",
        "institution_of_active_member", "role_kind_mismatch", "no_member_behind_institution",
        "institution_unknown", "manager_mismatch", "institution_name_missing"}


async def test_a_redelivered_event_gives_one_verdict_within_a_batch_and_across_batches(demo_registry):
    again, first, later = received("member", "M0002"), received("member", "M0005"), received("member", "M0006")
    await judge([again, first, again], demo_registry)
    await judge([later, again], demo_registry)

    assert await outcomes(demo_registry, [again, first, later]) == [
        ([("confirmed", "active_member", "M0002", None)], ["eligibility.confirmed.v1"]),
        ([("rejected", "withdrawn_member", "M0005", None)], ["eligibility.rejected.v1"]),
        ([("confirmed", "active_member", "M0006", None)], ["eligibility.confirmed.v1"]),
    ]
    assert await seen(demo_registry, again) == 1


async def test_two_copies_of_a_consultation_in_one_batch_give_one_verdict_and_one_event(demo_registry):
    original = received("care_staff", None, name="見本デイサービスセンター", prefecture="北海道")
    copy, other = copy_of(original), received("member", "M0001")
    await judge([original, other, copy], demo_registry)

    assert await outcomes(demo_registry, [original, other]) == [
        ([("confirmed", "institution_of_active_member", "M0004", "I0004")], ["eligibility.confirmed.v1"]),
        ([("confirmed", "active_member", "M0001", None)], ["eligibility.confirmed.v1"]),
    ]
    assert (await seen(demo_registry, original), await seen(demo_registry, copy)) == (1, 1)
    await judge([copy_of(original)], demo_registry)  # and a third copy in a later batch
    assert (await outcomes(demo_registry, [original]))[0][1] == ["eligibility.confirmed.v1"]


async def test_a_batch_that_fails_leaves_nothing_behind(demo_registry, monkeypatch):
    """The consumer then handles each delivery on its own: none of them may count as handled."""
    batch = [received("member", "M0001"), received("member", "M0666"), received("member", "M0002")]
    decide = rules.decide

    def failing(applicant, registry):
        if applicant.member_no == "M0666":
            raise ValueError("a rule that cannot decide")
        return decide(applicant, registry)

    monkeypatch.setattr(rules, "decide", failing)
    with pytest.raises(ValueError):
        await judge(batch, demo_registry)
    assert await outcomes(demo_registry, batch) == [([], [])] * 3
    assert [await seen(demo_registry, d) for d in batch] == [0, 0, 0]
    await judge([batch[0]], demo_registry)
    assert (await outcomes(demo_registry, batch[:1]))[0][1] == ["eligibility.confirmed.v1"]


@pytest.fixture
def statements(sessions):
    """The SQL statements sent to the database while the test runs."""
    sent: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    sa_event.listen(sessions.engine.sync_engine, "before_cursor_execute", count)
    yield sent
    sa_event.remove(sessions.engine.sync_engine, "before_cursor_execute", count)


async def test_a_batch_costs_the_same_statements_whatever_its_size(demo_registry, statements):
    await judge([received("member", "M0001")], demo_registry)  # the connection's first use is set-up
    # each kind of applicant, without the ones whose institution needs a near-name look-up
    known = [m for m in MIXED if "どこにもない" not in m[2].get("name", "") and m[2].get("prefecture")]
    per_batch = []
    for size in (len(known), 26, 39):
        batch = [received(role, number, **institution) for role, number, institution in (known * 3)[:size]]
        statements.clear()
        await judge(batch, demo_registry)
        per_batch.append(len(statements))
    # inbox, verdicts already written, members by number, institutions by name, members behind
    # them and of the same name, new verdicts, their events
    assert per_batch == [7, 7, 7]

    statements.clear()
    await judge(batch + [copy_of(d) for d in batch], demo_registry)  # all judged before
    assert len(statements) == 2  # inbox, verdicts already written
