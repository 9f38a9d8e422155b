"""Import of the member registry: both files are checked whole, then replace the registry in one
transaction, so a consultation is always judged against one complete registry, old or new."""
import csv
import io
import sys
from collections.abc import Mapping
from datetime import datetime, timezone

from sqlalchemy import delete, insert, text
from sqlalchemy.exc import SQLAlchemyError

from services.eligibility.orm import institutions, members
from services.eligibility.registry_csv import (
    InstitutionRow,
    MemberRow,
    RegistryFileError,
    RowError,
    normalize_member_no,
    normalize_name,
    parse_institutions,
    parse_members,
)
from shared.db import Database, make_engine, make_sessions
from shared.settings import get_settings

LINK_FIELDS = ("founder_member_no", "manager_member_no")


def check_links(members_: list[MemberRow], institutions_: list[InstitutionRow],
                institution_lines: Mapping[str, int] | None = None) -> None:
    """Every founder or manager number must be a member of the same import (pure)."""
    known = {normalize_member_no(m.member_no) for m in members_}
    lines = institution_lines or {}
    errors = [
        RowError(lines.get(i.institution_id, 0), field, "unknown_member",
                 f"{field} {number} は会員ファイルにありません")
        for i in institutions_ for field in LINK_FIELDS
        if (number := getattr(i, field)) and normalize_member_no(number) not in known
    ]
    if errors:
        raise RegistryFileError(errors)


async def replace_registry(sessions: Database, members_: list[MemberRow],
                           institutions_: list[InstitutionRow], *,
                           institution_lines: Mapping[str, int] | None = None) -> tuple[int, int]:
    """Replace the whole registry; returns (members, institutions) imported. Raises
    RegistryFileError before touching the database when an institution names a non-member."""
    check_links(members_, institutions_, institution_lines)
    imported_at = datetime.now(timezone.utc)
    member_rows = [
        {"member_no": normalize_member_no(m.member_no), "name": m.name, "name_kana": m.name_kana,
         "prefecture": m.prefecture, "status": m.status, "imported_at": imported_at}
        for m in members_
    ]
    institution_rows = [
        {"institution_id": i.institution_id, "name": i.name, "name_normalized": normalize_name(i.name),
         "kind": i.kind, "prefecture": i.prefecture,
         "founder_member_no": normalize_member_no(i.founder_member_no) if i.founder_member_no else None,
         "manager_member_no": normalize_member_no(i.manager_member_no) if i.manager_member_no else None}
        for i in institutions_
    ]
    async with sessions.begin() as session:
        # Two imports at once would interleave their deletes and inserts; readers (verdicts)
        # are not blocked and keep seeing the previous registry until the commit.
        await session.execute(text(
            f'lock table "{members.schema}".members, "{institutions.schema}".institutions in exclusive mode'
        ))
        await session.execute(delete(institutions))
        await session.execute(delete(members))
        if member_rows:
            await session.execute(insert(members), member_rows)
        if institution_rows:
            await session.execute(insert(institutions), institution_rows)
    return len(member_rows), len(institution_rows)


async def import_files(members_path: str, institutions_path: str) -> int:
    """`payhara members import`: 0 when imported, 2 when a file is refused (nothing changed)."""
    texts = {}
    for path in (members_path, institutions_path):
        try:
            with open(path, "rb") as file:
                texts[path] = file.read().decode("utf-8-sig")
        except OSError as error:
            return _refuse(f"{path} を読み込めません: {error.strerror or error}")
        except UnicodeDecodeError:
            return _refuse(f"{path} は UTF-8 ではありません。UTF-8 で保存し直してください（Excel なら「CSV UTF-8」）")

    problems: list[tuple[str, RowError]] = []
    parsed = {}
    for path, parse in ((members_path, parse_members), (institutions_path, parse_institutions)):
        try:
            parsed[path] = parse(texts[path])
        except RegistryFileError as refused:
            problems += [(path, e) for e in refused.errors]
    if not problems and not parsed[members_path]:
        problems.append((members_path, RowError(1, "", "no_members", "会員が 1 件もありません")))
    if problems:
        return _report(problems)

    engine = make_engine(get_settings(), pool_size=1, for_batch_jobs=True)
    try:
        counts = await replace_registry(
            make_sessions(engine), parsed[members_path], parsed[institutions_path],
            institution_lines=record_lines(texts[institutions_path], "institution_id"),
        )
    except RegistryFileError as refused:
        return _report([(institutions_path, e) for e in refused.errors])
    except (OSError, SQLAlchemyError) as error:
        # The driver's message (no statement, no parameters: they hold names) says what to fix.
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        print(f"データベースに取り込めませんでした（登録内容は変わっていません）: {reason}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"会員 {counts[0]} 件、医療機関・施設 {counts[1]} 件を取り込みました")
    return 0


def record_lines(text_: str, key: str) -> dict[str, int]:
    """The physical line (header = 1) on which each record starts, by its normalised key."""
    reader = csv.reader(io.StringIO(text_.removeprefix("\ufeff"), newline=""))
    header = [cell.strip() for cell in next(reader, [])]
    if key not in header:
        return {}
    found: dict[str, int] = {}
    line_end = reader.line_num
    for raw in reader:
        line, line_end = line_end + 1, reader.line_num
        if len(raw) == len(header):
            found.setdefault(normalize_member_no(raw[header.index(key)]), line)
    return found


def _report(problems: list[tuple[str, RowError]]) -> int:
    for path, e in problems:
        print(f"{path}:{e.line} {e.field or '-'} {e.code} {e.message_ja}", file=sys.stderr)
    print(f"{len(problems)} 件のエラーがあるため取り込みませんでした（登録内容は変わっていません）", file=sys.stderr)
    return 2


def _refuse(message: str) -> int:
    print(message, file=sys.stderr)
    print("取り込みませんでした（登録内容は変わっていません）", file=sys.stderr)
    return 2
