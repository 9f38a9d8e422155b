"""Parsing and validation of the member registry CSV files (pure: text in, rows out).

A registry file is imported whole or not at all: every problem found is collected and
raised together in one RegistryFileError, so the person fixing the file sees all of them
at once and a half-valid registry never reaches the database.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from shared.prefectures import PREFECTURES

MEMBER_COLUMNS = ("member_no", "name", "name_kana", "prefecture", "status")
INSTITUTION_COLUMNS = (
    "institution_id", "name", "kind", "prefecture", "founder_member_no", "manager_member_no",
)
MEMBER_STATUSES = ("active", "withdrawn")
INSTITUTION_KINDS = ("medical", "care")


# After normalisation an identifier is ASCII letters, digits, '-' or '_' only.
_IDENTIFIER = re.compile(r"[0-9A-Z][0-9A-Z_-]*")


@dataclass(frozen=True, slots=True)
class MemberRow:
    member_no: str
    name: str
    name_kana: str
    prefecture: str
    status: str


@dataclass(frozen=True, slots=True)
class InstitutionRow:
    institution_id: str
    name: str
    kind: str
    prefecture: str
    founder_member_no: str | None
    manager_member_no: str | None


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # physical line in the file, header = 1
    field: str  # column name, or "" when the problem concerns the whole row/file
    code: str  # machine code, stable for tests and tooling
    message_ja: str  # for the person fixing the file


class RegistryFileError(ValueError):
    """The file cannot be imported; `errors` lists every problem found."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        summary = f"{len(self.errors)} 件のエラーがあります"
        if first is not None:
            summary += f"（{first.line} 行目 {first.field}: {first.message_ja} ほか）"
        super().__init__(summary)


def normalize_member_no(s: str) -> str:
    """Full-width, padded or lower-case input all map to one form: 'ｍ０００１ ' -> 'M0001'."""
    return unicodedata.normalize("NFKC", s).strip().upper()


def normalize_name(s: str) -> str:
    """Form used to compare institution names: NFKC, all whitespace (incl. U+3000) removed."""
    return "".join(unicodedata.normalize("NFKC", s).split())


def parse_members(text: str) -> list[MemberRow]:
    return _parse(text, MEMBER_COLUMNS, "member_no", _member_row)


def parse_institutions(text: str) -> list[InstitutionRow]:
    return _parse(text, INSTITUTION_COLUMNS, "institution_id", _institution_row)


# --- internals -------------------------------------------------------------------------

_Errors = list[RowError]
Row = TypeVar("Row", MemberRow, InstitutionRow)


def _member_row(cells: dict[str, str], line: int, errors: _Errors) -> MemberRow:
    return MemberRow(
        member_no=_identifier(cells, "member_no", line, errors, required=True) or "",
        name=_required(cells, "name", line, errors),
        name_kana=_required(cells, "name_kana", line, errors),
        prefecture=_prefecture(cells, line, errors),
        status=_choice(cells, "status", MEMBER_STATUSES, line, errors),
    )


def _institution_row(cells: dict[str, str], line: int, errors: _Errors) -> InstitutionRow:
    founder = _identifier(cells, "founder_member_no", line, errors, required=False)
    manager = _identifier(cells, "manager_member_no", line, errors, required=False)
    if not cells["founder_member_no"] and not cells["manager_member_no"]:
        errors.append(RowError(
            line, "founder_member_no", "founder_or_manager_required",
            "開設者会員番号と管理者会員番号のどちらか一方は必須です",
        ))
    return InstitutionRow(
        institution_id=_identifier(cells, "institution_id", line, errors, required=True) or "",
        name=_required(cells, "name", line, errors),
        kind=_choice(cells, "kind", INSTITUTION_KINDS, line, errors),
        prefecture=_prefecture(cells, line, errors),
        founder_member_no=founder,
        manager_member_no=manager,
    )


def _parse(
    text: str,
    columns: tuple[str, ...],
    key: str,
    build: Callable[[dict[str, str], int, _Errors], Row],
) -> list[Row]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise RegistryFileError([RowError(
            1, "", "missing_header", f"1 行目に見出し行（{','.join(columns)}）が必要です",
        )])
    names = [cell.strip() for cell in header]
    header_errors = _check_header(names, columns)
    if header_errors:
        # Without a sound header no cell can be trusted to be what it claims.
        raise RegistryFileError(header_errors)

    errors: _Errors = []
    rows: list[Row] = []
    first_seen: dict[str, int] = {}
    line_end = reader.line_num
    for raw in reader:
        line, line_end = line_end + 1, reader.line_num
        if not any(cell.strip() for cell in raw):
            continue  # blank lines and ",,,," rows that spreadsheets append
        if len(raw) != len(names):
            errors.append(RowError(
                line, "", "wrong_field_count",
                f"項目数が {len(raw)} 個です（見出しは {len(names)} 個）",
            ))
            continue
        cells = {name: cell.strip() for name, cell in zip(names, raw)}
        row_errors: _Errors = []
        row = build(cells, line, row_errors)
        value = getattr(row, key)
        if value and not any(e.field == key for e in row_errors):
            if value in first_seen:
                row_errors.append(RowError(
                    line, key, "duplicate_key",
                    f"{key} {value} は {first_seen[value]} 行目と重複しています",
                ))
            else:
                first_seen[value] = line
        errors.extend(row_errors)
        rows.append(row)
    if errors:
        raise RegistryFileError(errors)
    return rows


def _check_header(names: list[str], columns: tuple[str, ...]) -> _Errors:
    errors = [
        RowError(1, c, "missing_column", f"見出しに列 {c} がありません")
        for c in columns if c not in names
    ]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            errors.append(RowError(1, name, "duplicate_column", f"列 {name} が重複しています"))
        elif name not in columns:
            errors.append(RowError(
                1, name, "unknown_column",
                f"列 {name or '（空）'} は使えません。使える列: {','.join(columns)}",
            ))
        seen.add(name)
    return errors


def _required(cells: dict[str, str], field: str, line: int, errors: _Errors) -> str:
    value = cells[field]
    if not value:
        errors.append(RowError(line, field, "required", f"{field} が空です"))
    return value


def _identifier(
    cells: dict[str, str], field: str, line: int, errors: _Errors, *, required: bool,
) -> str | None:
    raw = cells[field]
    if not raw:
        if required:
            errors.append(RowError(line, field, "required", f"{field} が空です"))
        return None
    value = normalize_member_no(raw)
    if not _IDENTIFIER.fullmatch(value):
        errors.append(RowError(
            line, field, "invalid_identifier",
            f"{field} の「{raw}」は使えません（英数字・ハイフン・下線のみ）",
        ))
    return value


def _choice(
    cells: dict[str, str], field: str, allowed: tuple[str, ...], line: int, errors: _Errors,
) -> str:
    value = unicodedata.normalize("NFKC", cells[field]).strip().lower()
    if not value:
        errors.append(RowError(line, field, "required", f"{field} が空です"))
    elif value not in allowed:
        errors.append(RowError(
            line, field, f"invalid_{field}",
            f"{field} の「{cells[field]}」は使えません（{' / '.join(allowed)} のいずれか）",
        ))
    return value


def _prefecture(cells: dict[str, str], line: int, errors: _Errors) -> str:
    value = cells["prefecture"]
    if not value:
        errors.append(RowError(line, "prefecture", "required", "prefecture が空です"))
    elif value not in PREFECTURES:
        hint = next((p for p in PREFECTURES if p[:-1] == value), None)
        errors.append(RowError(
            line, "prefecture", "invalid_prefecture",
            f"都道府県名「{value}」は正式名称ではありません"
            + (f"（「{hint}」ではありませんか）" if hint else ""),
        ))
    return value
