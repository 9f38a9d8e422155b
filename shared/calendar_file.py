"""The desk's own calendar file (config/desk-calendar.toml): the days it closes or opens beyond
the national calendar, and who reviewed that list and when.

The file decides when consultants are promised a call, so it is read strictly: anything
missing, misspelt or of the wrong type stops the load with the file's path and the reason,
rather than being skipped and silently changing a promise.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLE = """reviewed_by = "氏名"
reviewed_on = 2026-12-01
[[closure]]
date = 2027-01-04
reason = "臨時休業（研修）\""""


class CalendarFileError(ValueError):
    """The desk calendar file cannot be used; the message names the file and what to fix."""


@dataclass(frozen=True)
class DeskDays:
    reviewed_by: str
    reviewed_on: date
    closures: dict[date, str] = field(default_factory=dict)  # day -> Japanese reason
    openings: dict[date, str] = field(default_factory=dict)  # day -> why it opens
    path: Path | None = None


def resolve(path: str | Path) -> Path:
    """A relative path is taken from the repository, not the working directory, so every
    service reads the same file wherever it was started."""
    path = Path(path)
    return path if path.is_absolute() else REPOSITORY / path


def read_desk_days(path: str | Path) -> DeskDays:
    path = resolve(path)

    def refuse(reason: str) -> CalendarFileError:
        return CalendarFileError(f"desk calendar file {path}: {reason}")

    try:
        content = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise refuse("not found (set PAYHARA_CALENDAR_FILE to the desk's calendar file)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise refuse(f"not valid TOML: {error}") from None

    unknown = set(content) - {"reviewed_by", "reviewed_on", "closure", "opening"}
    if unknown:
        raise refuse(f"unknown key(s) {', '.join(sorted(unknown))}; expected e.g.\n{EXAMPLE}")
    reviewed_by, reviewed_on = content.get("reviewed_by"), content.get("reviewed_on")
    if not isinstance(reviewed_by, str) or not reviewed_by.strip():
        raise refuse("reviewed_by is missing: say who reviewed this list (reviewed_by = \"氏名\")")
    if type(reviewed_on) is not date:  # a TOML datetime is a date subclass: refuse it too
        raise refuse("reviewed_on is missing or not a date: write it unquoted, e.g. reviewed_on = 2026-12-01")

    closures, openings = (_days(content, kind, refuse) for kind in ("closure", "opening"))
    both = sorted(closures.keys() & openings.keys())
    if both:
        raise refuse(f"{both[0]} is listed both as a closure and as an opening")
    return DeskDays(reviewed_by.strip(), reviewed_on, closures, openings, path)


def _days(content: dict, kind: str, refuse) -> dict[date, str]:
    entries = content.get(kind, [])
    if not isinstance(entries, list):
        raise refuse(f"{kind} must be written as [[{kind}]] tables, each with a date and a reason")
    days: dict[date, str] = {}
    for n, entry in enumerate(entries, start=1):
        where = f"[[{kind}]] number {n}"
        if not isinstance(entry, dict) or set(entry) != {"date", "reason"}:
            raise refuse(f"{where} must have exactly a date and a reason, found {sorted(entry)}"
                         if isinstance(entry, dict) else f"{where} is not a table")
        day, reason = entry["date"], entry["reason"]
        if type(day) is not date:
            raise refuse(f"{where}: date must be an unquoted date like 2027-01-04, found {day!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise refuse(f"{where} ({day}): reason must be a non-empty text in Japanese")
        if day in days:
            raise refuse(f"{where}: {day} is listed twice")
        days[day] = reason.strip()
    return days
