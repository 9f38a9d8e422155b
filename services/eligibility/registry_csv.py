"""Reading and checking the member registry CSV files (pure: bytes or lines in, rows out).

A registry file is imported whole or not at all. It is read as a stream, row by row, so its size
does not matter; every problem found (up to MAX_ERRORS a file) is collected and reported
together, so the person fixing the file sees them at once, and a half-valid registry never
reaches the database. The keys rows are compared by come from the eligibility rules.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.eligibility import rules
from shared.prefectures import PREFECTURES

MEMBER_COLUMNS = ("member_no", "name", "name_kana", "prefecture", "status")
INSTITUTION_COLUMNS = (
    "institution_id", "name", "kind", "prefecture", "founder_member_no", "manager_member_no",
)
MEMBER_STATUSES = ("active", "withdrawn")
INSTITUTION_KINDS = ("medical", "care")
MAX_ERRORS = 50  # a file: enough to fix a batch at once, few enough to read

# What Excel and the association's systems in Japan export, as decided by detect_encoding.
ENCODING_NAMES = {"utf-8-sig": "UTF-8（BOM 付き）", "utf-8": "UTF-8", "cp932": "Shift_JIS（CP932）"}

# After normalisation an identifier is ASCII letters, digits, '-' or '_' only.
_IDENTIFIER = re.compile(r"[0-9A-Z][0-9A-Z_-]*")

# Kept for the modules that compare numbers and names with these names; the rules decide.
normalize_member_no = rules.member_no
normalize_name = rules.institution_key


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


# --- the bytes: which encoding -----------------------------------------------------------

class UndecodableFile(ValueError):
    """Neither UTF-8 nor CP932: `error` says where (line and byte) reading stopped."""

    def __init__(self, error: RowError, byte: int) -> None:
        self.error, self.byte = error, byte
        super().__init__(error.message_ja)


def detect_encoding(read: Callable[[], Iterable[bytes]]) -> str:
    """'utf-8-sig', 'utf-8' or 'cp932', decided from the bytes, never guessed: a UTF-8 BOM means
    UTF-8; else valid UTF-8 is UTF-8; else valid CP932 is CP932; else UndecodableFile. `read()`
    gives one pass over the file, in chunks that end at a line break (a line break byte is never
    part of a character in either encoding, so each chunk decodes on its own)."""
    head = next(iter(read()), b"")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UndecodableFile(RowError(1, "", "utf16_not_supported",
                                       "UTF-16 のファイルは読めません。UTF-8 か Shift_JIS で保存し直してください"), 1)
    bom = head.startswith(codecs.BOM_UTF8)
    as_utf8 = _first_undecodable(read(), "utf-8")
    if as_utf8 is None:
        return "utf-8-sig" if bom else "utf-8"
    as_cp932 = None if bom else _first_undecodable(read(), "cp932")
    if not bom and as_cp932 is None:
        return "cp932"
    # The encoding that read further is the one the file was meant to be in.
    tries = [(as_utf8, "UTF-8")] + ([(as_cp932, "Shift_JIS")] if as_cp932 else [])
    (line, byte), name = max(tries, key=lambda tried: tried[0][1])
    as_what = "UTF-8（BOM 付き）として" if bom else "UTF-8 としても Shift_JIS（CP932）としても"
    raise UndecodableFile(RowError(
        line, "", "undecodable",
        f"{as_what}読めません: {line} 行目、先頭から {byte} バイト目（{name} として読んだ場合）。"
        "UTF-8 か Shift_JIS で保存し直してください",
    ), byte)


def _first_undecodable(chunks: Iterable[bytes], encoding: str) -> tuple[int, int] | None:
    """(line, 1-based byte offset) of the first byte that does not decode, or None."""
    offset, lines = 0, 0
    for chunk in chunks:
        try:
            chunk.decode(encoding)
        except UnicodeDecodeError as error:
            return lines + chunk.count(b"\n", 0, error.start) + 1, offset + error.start + 1
        offset, lines = offset + len(chunk), lines + chunk.count(b"\n")
    return None


# --- the rows -----------------------------------------------------------------------------

_Errors = list[RowError]
Row = TypeVar("Row", MemberRow, InstitutionRow)


@dataclass(frozen=True)
class _Kind(Generic[Row]):
    columns: tuple[str, ...]
    key: str
    build: Callable[[dict[str, str], int, _Errors], Row]
    at_least_one: tuple[str, str] | None  # (code, message) when a file without rows is refused


class RegistryFile(Generic[Row]):
    """One registry file, read row by row. Iterating yields its rows in file order while the
    file is sound; from the first problem on it reads on only to collect problems (up to
    MAX_ERRORS) and yields nothing more, since the file will not be imported. `errors` holds
    the problems found so far; `source` names the file in messages."""

    def __init__(self, lines: Iterable[str], kind: _Kind[Row], source: str = "") -> None:
        self.source = source
        self.errors: _Errors = []
        self.cut_off = False  # MAX_ERRORS reached: there may be more problems
        self._lines, self._kind = lines, kind

    def __iter__(self) -> Iterator[Row]:
        kind = self._kind
        reader = csv.reader(self._lines)
        header = next(reader, None)
        if header:
            header[0] = header[0].removeprefix("\ufeff")  # the BOM, when the text still has it
        if header is None or not any(cell.strip() for cell in header):
            self.errors.append(RowError(
                1, "", "missing_header", f"1 行目に見出し行（{','.join(kind.columns)}）が必要です",
            ))
            return
        names = [cell.strip() for cell in header]
        self.errors += _check_header(names, kind.columns)
        if self.errors:
            return  # without a sound header no cell can be trusted to be what it claims

        first_seen: dict[str, int] = {}  # key -> line: ~100 bytes a row, 20 MB for 200,000
        line_end, found = reader.line_num, False
        while len(self.errors) < MAX_ERRORS:
            try:
                raw = next(reader)
            except StopIteration:
                break
            except csv.Error as error:  # e.g. a cell beyond the csv module's size limit
                self.errors.append(RowError(line_end + 1, "", "csv_syntax", f"CSV として読めません（{error}）"))
                break
            line, line_end = line_end + 1, reader.line_num
            if not any(cell.strip() for cell in raw):
                continue  # blank lines and ",,,," rows that spreadsheets append
            if len(raw) != len(names):
                self.errors.append(RowError(
                    line, "", "wrong_field_count", f"項目数が {len(raw)} 個です（見出しは {len(names)} 個）",
                ))
                continue
            cells = {name: cell.strip() for name, cell in zip(names, raw)}
            row_errors: _Errors = [
                RowError(line, name, "nul_character", f"{name} に NUL 文字が含まれています")
                for name, cell in cells.items() if "\x00" in cell
            ]
            row = kind.build(cells, line, row_errors)
            value = getattr(row, kind.key)
            if value and not any(e.field == kind.key for e in row_errors):
                if value in first_seen:
                    row_errors.append(RowError(
                        line, kind.key, "duplicate_key",
                        f"{kind.key} {value} は {first_seen[value]} 行目と重複しています",
                    ))
                else:
                    first_seen[value] = line
            self.errors += row_errors
            found = True
            if not self.errors:
                yield row
        if len(self.errors) >= MAX_ERRORS:
            del self.errors[MAX_ERRORS:]
            self.cut_off = True
        elif not found and not self.errors and kind.at_least_one:
            self.errors.append(RowError(line_end, "", *kind.at_least_one))


def _member_row(cells: dict[str, str], line: int, errors: _Errors) -> MemberRow:
    return MemberRow(
        member_no=_identifier(cells, "member_no", line, errors, required=True) or "",
        name=_required(cells, "name", line, errors),
        name_kana=_required(cells, "name_kana", line, errors),
        prefecture=_prefecture(cells, line, errors),
        status=_choice(cells, "status", MEMBER_STATUSES, line, errors),
    )


def _institution_row(cells: dict[str, str], line: int, errors: _Errors) -> InstitutionRow:
    # Founder and manager may both be blank, or not members: the institution list can be wider
    # than the membership; such an institution is imported and gives no eligibility.
    return InstitutionRow(
        institution_id=_identifier(cells, "institution_id", line, errors, required=True) or "",
        name=_required(cells, "name", line, errors),
        kind=_choice(cells, "kind", INSTITUTION_KINDS, line, errors),
        prefecture=_prefecture(cells, line, errors),
        founder_member_no=_identifier(cells, "founder_member_no", line, errors, required=False),
        manager_member_no=_identifier(cells, "manager_member_no", line, errors, required=False),
    )


MEMBERS = _Kind(MEMBER_COLUMNS, "member_no", _member_row, ("no_members", "会員が 1 件もありません"))
INSTITUTIONS = _Kind(INSTITUTION_COLUMNS, "institution_id", _institution_row, None)


def read_members(lines: Iterable[str], source: str = "") -> RegistryFile[MemberRow]:
    """`lines`: a text stream opened with newline="" (csv's rule), e.g. io.TextIOWrapper."""
    return RegistryFile(lines, MEMBERS, source)


def read_institutions(lines: Iterable[str], source: str = "") -> RegistryFile[InstitutionRow]:
    return RegistryFile(lines, INSTITUTIONS, source)


def parse_members(text: str) -> list[MemberRow]:
    """A whole file's text at once (the demo, tests): its rows, or RegistryFileError."""
    return _all_rows(read_members(io.StringIO(text, newline="")))


def parse_institutions(text: str) -> list[InstitutionRow]:
    return _all_rows(read_institutions(io.StringIO(text, newline="")))


def _all_rows(file: RegistryFile[Row]) -> list[Row]:
    rows = list(file)
    if file.errors:
        raise RegistryFileError(file.errors)
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
    value = rules.member_no(raw)
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
