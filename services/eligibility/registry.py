"""Import of the member registry (`payhara members import`). Both files stream row by row into
staging tables; only when both turned out sound do they replace the registry, in the same
transaction, so a consultation is always judged against one complete registry, old or new."""
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import NamedTuple

import asyncpg
from sqlalchemy import delete, text
from sqlalchemy.exc import SQLAlchemyError

from services.eligibility import rules
from services.eligibility.orm import SCHEMA, institutions, members
from services.eligibility.registry_csv import (
    ENCODING_NAMES,
    MAX_ERRORS,
    InstitutionRow,
    MemberRow,
    RegistryFile,
    RowError,
    UndecodableFile,
    detect_encoding,
    read_institutions,
    read_members,
)
from shared.db import Database, make_engine, make_sessions
from shared.settings import get_settings

MEMBER_COLUMNS = ("member_no", "name", "name_kana", "name_key", "kana_key", "prefecture", "status",
                  "imported_at")
INSTITUTION_COLUMNS = ("institution_id", "name", "name_normalized", "kind", "prefecture",
                       "founder_member_no", "manager_member_no")
CHUNK_BYTES = 1 << 20  # a read of the encoding check; a chunk ends at a line break

Problem = tuple[str, RowError]  # the file, and what is wrong in it


class Imported(NamedTuple):
    members: int
    institutions: int
    without_member: int  # institutions whose founder and manager are both blank or not members


class Refused(Exception):
    """A file is unsound: nothing was changed."""

    def __init__(self, problems: list[Problem], cut_off: bool = False) -> None:
        self.problems, self.cut_off = problems, cut_off
        super().__init__(f"{len(problems)} problems")


async def replace_registry(sessions: Database, members_: Iterable[MemberRow],
                           institutions_: Iterable[InstitutionRow]) -> Imported:
    """Replace the whole registry with these rows (RegistryFiles as they are read, or lists).
    Raises Refused, the registry unchanged, when a RegistryFile turned out unsound."""
    imported_at = datetime.now(timezone.utc)
    async with sessions.begin() as conn:
        # This statement opens the transaction; COPY runs on the same connection, within it.
        for table in ("members", "institutions"):
            await conn.execute(text(f'create temp table {table}_new (like "{SCHEMA}".{table}) on commit drop'))
        copy = (await conn.get_raw_connection()).driver_connection.copy_records_to_table
        await copy("members_new", columns=MEMBER_COLUMNS,
                   records=(_member_record(m, imported_at) for m in members_))
        await copy("institutions_new", columns=INSTITUTION_COLUMNS, records=map(_institution_record, institutions_))
        files = [f for f in (members_, institutions_) if isinstance(f, RegistryFile)]
        if problems := [(f.source, e) for f in files for e in f.errors]:
            raise Refused(problems, cut_off=any(f.cut_off for f in files))

        # The swap. EXCLUSIVE lets plain reads through (TRUNCATE's lock would not): verdicts keep
        # seeing the old registry until the commit; a second import waits here for this one.
        await conn.execute(text(f'lock table "{SCHEMA}".members, "{SCHEMA}".institutions in exclusive mode'))
        await conn.execute(delete(institutions))
        await conn.execute(delete(members))
        counts = [(await conn.execute(text(
            f'insert into "{SCHEMA}".{table} ({",".join(columns)}) select {",".join(columns)} from {table}_new'
        ))).rowcount for table, columns in (("members", MEMBER_COLUMNS), ("institutions", INSTITUTION_COLUMNS))]
        without_member = await conn.scalar(text(
            f'select count(*) from "{SCHEMA}".institutions i'
            f' where not exists (select from "{SCHEMA}".members m where m.member_no = i.founder_member_no)'
            f' and not exists (select from "{SCHEMA}".members m where m.member_no = i.manager_member_no)'
        ))
    return Imported(counts[0], counts[1], without_member)


def _member_record(m: MemberRow, imported_at: datetime) -> tuple:
    return (rules.member_no(m.member_no), m.name, m.name_kana, rules.person_name(m.name), rules.kana(m.name_kana),
            m.prefecture, m.status, imported_at)


def _institution_record(i: InstitutionRow) -> tuple:
    return (i.institution_id, i.name, rules.institution_key(i.name), i.kind, i.prefecture,
            rules.member_no(i.founder_member_no) if i.founder_member_no else None,
            rules.member_no(i.manager_member_no) if i.manager_member_no else None)


async def import_files(members_path: str, institutions_path: str) -> int:
    """`payhara members import`: 0 imported, 2 a file refused, 1 a database problem; on 2 and 1
    the registry is as it was."""
    encodings = {}
    for path in (members_path, institutions_path):
        try:
            encodings[path] = detect_encoding(lambda: _chunks(path))
        except OSError as error:
            return _refuse(f"{path} を読み込めません: {error.strerror or error}")
        except UndecodableFile as undecodable:
            return _report([(path, undecodable.error)])

    engine = make_engine(get_settings(), pool_size=1, for_batch_jobs=True)
    try:
        with open(members_path, encoding=encodings[members_path], newline="") as members_file, \
                open(institutions_path, encoding=encodings[institutions_path], newline="") as institutions_file:
            imported = await replace_registry(make_sessions(engine), read_members(members_file, members_path),
                                              read_institutions(institutions_file, institutions_path))
    except Refused as refused:
        return _report(refused.problems, refused.cut_off)
    except (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        # The driver's message (no statement, no parameters: they hold names) says what to fix.
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        print(f"データベースに取り込めませんでした（登録内容は変わっていません）: {reason}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"会員 {imported.members} 件、医療機関・施設 {imported.institutions} 件を取り込みました"
          f"（文字コード: 会員 {ENCODING_NAMES[encodings[members_path]]}、"
          f"医療機関・施設 {ENCODING_NAMES[encodings[institutions_path]]}）")
    if imported.without_member:
        print(f"警告: 会員が開設者・管理者でない医療機関・施設が {imported.without_member} 件あります"
              "（資格の根拠になりません）", file=sys.stderr)
    return 0


def _chunks(path: str) -> Iterator[bytes]:
    """The file's bytes, each chunk ending at a line break (but the last)."""
    with open(path, "rb") as file:
        rest = b""
        while block := file.read(CHUNK_BYTES):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            if cut:
                yield block[:cut]
            rest = block[cut:]
        if rest:
            yield rest


def _report(problems: list[Problem], cut_off: bool = False) -> int:
    for path, e in problems:
        print(f"{path}:{e.line} {e.field or '-'} {e.code} {e.message_ja}", file=sys.stderr)
    found = f"{len(problems)} 件以上" if cut_off else f"{len(problems)} 件"  # MAX_ERRORS a file are shown
    print(f"{found}のエラーがあるため取り込みませんでした（登録内容は変わっていません）", file=sys.stderr)
    return 2


def _refuse(message: str) -> int:
    print(message, file=sys.stderr)
    print("取り込みませんでした（登録内容は変わっていません）", file=sys.stderr)
    return 2
