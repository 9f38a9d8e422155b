"""The member registry import on the real database: `payhara members import` with its encodings,
all-or-nothing refusals, re-imports, institutions without a member behind them, stored keys."""
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.eligibility import rules
from services.eligibility.orm import institutions, members
from services.eligibility.registry import import_files
from shared.db import make_engine, make_sessions

ROOT = Path(__file__).resolve().parents[2]
MEMBERS_HEADER = "member_no,name,name_kana,prefecture,status\n"
INSTITUTIONS_HEADER = "institution_id,name,kind,prefecture,founder_member_no,manager_member_no\n"
MEMBERS = MEMBERS_HEADER + (
    "M0001,髙橋 﨑子,タカハシ サキコ,東京都,active\n"
    "M0002,渡邉 一郎,ワタナベ イチロウ,大阪府,active\n"
    "M0003,齋藤 花子,サイトウ ハナコ,北海道,active\n"
)
INSTITUTIONS = INSTITUTIONS_HEADER + (
    "I0001,医療法人社団 髙橋会 髙橋内科クリニック,medical,東京都,M0001,M0001\n"
    "I0002,渡邉ケアホーム,care,大阪府,,M0002\n"
)


@pytest.fixture
async def sessions(desk):
    engine = make_engine(desk, pool_size=2)
    yield make_sessions(engine)
    await engine.dispose()


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


async def imported(tmp_path: Path, members_text: str = MEMBERS, institutions_text: str = INSTITUTIONS,
                   encoding: str = "utf-8") -> int:
    return await import_files(write(tmp_path, "members.csv", members_text, encoding),
                              write(tmp_path, "institutions.csv", institutions_text, encoding))


async def registry_of(sessions) -> tuple[list, list]:
    """Every stored row of both tables (but the import time), in key order."""
    async with sessions() as session:
        member_rows = (await session.execute(
            select(*[c for c in members.c if c.name != "imported_at"]).order_by(members.c.member_no))).all()
        institution_rows = (await session.execute(select(institutions).order_by(institutions.c.institution_id))).all()
    return member_rows, institution_rows


async def status_of(sessions) -> dict[str, str]:
    async with sessions() as session:
        return {r.member_no: r.status for r in (await session.execute(select(members))).all()}


# --- all or nothing ----------------------------------------------------------------------------

async def test_a_bad_row_anywhere_changes_nothing_and_is_named_with_file_line_and_column(sessions, tmp_path, capsys):
    assert await imported(tmp_path) == 0
    before = await registry_of(sessions)
    many = MEMBERS_HEADER + "".join(f"M{i:05d},見本 {i},ミホン,東京都,active\n" for i in range(10, 3010))
    broken = many + "M09999,壊れ 一,コワレ ハジメ,東京都,gone\nM09998,,コワレ フタバ,東京,active\n"
    members_csv = write(tmp_path, "new-members.csv", broken)
    institutions_csv = write(tmp_path, "new-institutions.csv", INSTITUTIONS_HEADER + "I9001,壊れ医院,hospital,東京都,,\n")
    capsys.readouterr()

    assert await import_files(members_csv, institutions_csv) == 2
    err = capsys.readouterr().err
    assert f"{members_csv}:3002 status invalid_status" in err
    assert f"{members_csv}:3003 name required" in err
    assert f"{members_csv}:3003 prefecture invalid_prefecture" in err
    assert f"{institutions_csv}:2 kind invalid_kind" in err
    assert "4 件のエラーがあるため取り込みませんでした（登録内容は変わっていません）" in err
    assert "壊れ" not in err  # names are personal data: lines and columns only
    assert await registry_of(sessions) == before


async def counts(sessions) -> tuple[int, int]:
    """Members and institutions as one statement sees them: one snapshot for both."""
    async with sessions() as session:
        return tuple((await session.execute(select(select(func.count()).select_from(members).scalar_subquery(),
                                                   select(func.count()).select_from(institutions).scalar_subquery()))
                      ).one())


async def test_a_reader_sees_the_old_registry_or_the_new_never_a_part(sessions, tmp_path):
    assert await imported(tmp_path) == 0
    count = 20_000
    members_csv = write(tmp_path, "big-members.csv", MEMBERS_HEADER + "".join(
        f"M{i:06d},見本 {i},ミホン,東京都,active\n" for i in range(count)))
    institutions_csv = write(tmp_path, "big-institutions.csv", INSTITUTIONS_HEADER + "".join(
        f"I{i:06d},見本医院{i},medical,東京都,M{i:06d},\n" for i in range(count // 2)))
    process = await asyncio.create_subprocess_exec(  # the CLI, in its own process: it runs while we read
        sys.executable, "-m", "services.cli", "members", "import", "--members", members_csv,
        "--institutions", institutions_csv, cwd=ROOT, env=dict(os.environ),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    finished = asyncio.ensure_future(process.communicate())
    seen = set()
    while not finished.done():
        seen.add(await counts(sessions))
        await asyncio.sleep(0.002)
    out, _ = finished.result()
    assert process.returncode == 0, out.decode()
    seen.add(await counts(sessions))
    assert seen == {(3, 2), (count, count // 2)}


# --- encodings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding, named", [("cp932", "Shift_JIS（CP932）"), ("utf-8-sig", "UTF-8（BOM 付き）"),
                                             ("utf-8", "UTF-8")])
async def test_cp932_and_utf8_with_or_without_bom_are_read_and_named(sessions, tmp_path, capsys, encoding, named):
    assert await imported(tmp_path, encoding=encoding) == 0
    out = capsys.readouterr().out
    assert "会員 3 件、医療機関・施設 2 件を取り込みました" in out
    assert f"会員 {named}、医療機関・施設 {named}" in out
    member_rows, institution_rows = await registry_of(sessions)
    assert [r[1] for r in member_rows] == ["髙橋 﨑子", "渡邉 一郎", "齋藤 花子"]
    assert institution_rows[0].name == "医療法人社団 髙橋会 髙橋内科クリニック"


async def test_a_file_neither_utf8_nor_cp932_is_refused_with_its_line(sessions, tmp_path, capsys):
    assert await imported(tmp_path) == 0
    before = await registry_of(sessions)
    data = MEMBERS.encode("cp932").replace("渡邉".encode("cp932"), b"\x82\x20\x82\x20")
    members_csv = tmp_path / "broken.csv"
    members_csv.write_bytes(data)
    bad_byte = data.index(b"\x82\x20") + 1
    capsys.readouterr()

    assert await import_files(str(members_csv), write(tmp_path, "i.csv", INSTITUTIONS)) == 2
    err = capsys.readouterr().err
    assert f"{members_csv}:3 - undecodable" in err
    assert f"先頭から {bad_byte} バイト目" in err
    assert await registry_of(sessions) == before


# --- re-import -----------------------------------------------------------------------------------

async def test_a_reimport_withdraws_and_drops_members(sessions, tmp_path):
    assert await imported(tmp_path) == 0
    assert await status_of(sessions) == {"M0001": "active", "M0002": "active", "M0003": "active"}

    withdrawn = MEMBERS.replace("M0002,渡邉 一郎,ワタナベ イチロウ,大阪府,active", "M0002,渡邉 一郎,ワタナベ イチロウ,大阪府,withdrawn")
    assert await imported(tmp_path, withdrawn) == 0
    assert await status_of(sessions) == {"M0001": "active", "M0002": "withdrawn", "M0003": "active"}

    dropped = "".join(line for line in withdrawn.splitlines(keepends=True) if not line.startswith("M0003"))
    assert await imported(tmp_path, dropped) == 0
    assert await status_of(sessions) == {"M0001": "active", "M0002": "withdrawn"}


# --- institutions without a member behind them -----------------------------------------------------

async def test_institutions_without_a_member_are_imported_and_counted(sessions, tmp_path, capsys):
    wider = INSTITUTIONS + (
        "I0003,見本総合病院,medical,東京都,M7777,\n"  # founder not in the members file
        "I0004,架空デイサービス,care,北海道,,\n"  # neither given
        "I0005,仮名医院,medical,大阪府,M8888,M0003\n"  # the manager is a member: counts as backed
    )
    assert await imported(tmp_path, institutions_text=wider) == 0
    out, err = capsys.readouterr()
    assert "医療機関・施設 5 件を取り込みました" in out
    assert "会員が開設者・管理者でない医療機関・施設が 2 件あります（資格の根拠になりません）" in err
    _, institution_rows = await registry_of(sessions)
    assert [(r.institution_id, r.founder_member_no, r.manager_member_no) for r in institution_rows][2:] == [
        ("I0003", "M7777", None), ("I0004", None, None), ("I0005", "M8888", "M0003")]

    assert await imported(tmp_path) == 0
    assert "会員が開設者" not in capsys.readouterr().err  # every institution has a member behind it


# --- stored keys ---------------------------------------------------------------------------------

async def test_stored_keys_are_the_rules_keys(sessions, tmp_path):
    raw = MEMBERS.replace("M0001,", "ｍ０００１,").replace("タカハシ サキコ", "ﾀｶﾊｼ ｻｷｺ")
    assert await imported(tmp_path, raw) == 0
    member_rows, institution_rows = await registry_of(sessions)
    given = [line.split(",") for line in raw.splitlines()[1:]]
    assert [(r.member_no, r.name_key, r.kana_key) for r in member_rows] == [
        (rules.member_no(no), rules.person_name(name), rules.kana(kana)) for no, name, kana, *_ in given]
    assert [r.name_normalized for r in institution_rows] == [rules.institution_key(r.name) for r in institution_rows]


async def test_the_import_asks_the_rules_for_every_key(sessions, tmp_path, monkeypatch):
    """Not a copy of today's normalisation: whatever the rules say is what is stored."""
    monkeypatch.setattr(rules, "person_name", lambda s: f"name:{s}")
    monkeypatch.setattr(rules, "kana", lambda s: f"kana:{s}")
    monkeypatch.setattr(rules, "institution_key", lambda s: f"key:{s[::-1]}")
    assert await imported(tmp_path) == 0
    member_rows, institution_rows = await registry_of(sessions)
    assert member_rows[0].name_key == "name:髙橋 﨑子" and member_rows[0].kana_key == "kana:タカハシ サキコ"
    assert institution_rows[1].name_normalized == "key:ムーホアケ邉渡"
