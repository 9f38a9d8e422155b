"""`payhara calendar`: the desk calendar as operators read it, a month's closed days or one day,
from the same DeskCalendar that makes the promises, so what it prints is what receipts say."""
import calendar as month_calendar
import re
import sys
from datetime import date

from shared.calendar import CalendarFileError, DeskCalendar, japanese_date

USAGE = "payhara calendar YYYY-MM | payhara calendar check YYYY-MM-DD"


class BadInput(ValueError):
    pass


def run(what: str | None, day: str | None) -> int:
    """0 whether the desk is open or not; 2 for input it cannot read; 1 for a broken calendar file."""
    try:
        desk = DeskCalendar.default()
        if what == "check":
            print(day_report(desk, parse_day(day)))
        else:
            if day is not None:
                raise BadInput(f"月のあとに日付は指定できません / a month takes no day ({USAGE})")
            print(month_report(desk, *parse_month(what)))
    except CalendarFileError as error:
        print(f"payhara calendar: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # BadInput, or a year without holiday data
        print(f"payhara calendar: {error}", file=sys.stderr)
        return 2
    return 0


def parse_month(text: str | None) -> tuple[int, int]:
    found = re.fullmatch(r"(\d{4})-(\d{2})", text or "")
    if not found or not 1 <= int(found[2]) <= 12:
        raise BadInput(f"月は YYYY-MM の形で指定してください / give the month as YYYY-MM, "
                       f"e.g. 2026-09 (got {text!r}; {USAGE})")
    return int(found[1]), int(found[2])


def parse_day(text: str | None) -> date:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text or ""):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise BadInput(f"日付は YYYY-MM-DD の形で指定してください / give the day as YYYY-MM-DD, "
                   f"e.g. 2026-09-22 (got {text!r})")


def month_report(desk: DeskCalendar, year: int, month: int) -> str:
    """A line per closed day with its reason, and per day the desk's file opens."""
    days = [date(year, month, n) for n in range(1, month_calendar.monthrange(year, month)[1] + 1)]
    lines, closed = [], 0
    for day, reason in ((day, desk.closure_reason(day)) for day in days):
        label = f"  {japanese_date(day)[5:]:<12}"  # without the year; padding aligns as 5 wide characters each
        if reason is not None:
            closed += 1
            lines.append(f"{label}{reason}")
        elif day in desk.days.openings:
            lines.append(f"{label}営業（{desk.days.openings[day]}）")
    return "\n".join([f"{year}年{month}月  営業日 {len(days) - closed}日 / 休業日 {closed}日", *lines, source(desk)])


def day_report(desk: DeskCalendar, day: date) -> str:
    reason = desk.closure_reason(day)
    if reason is None:
        return f"{japanese_date(day)} 営業日 (open)"
    return (f"{japanese_date(day)} 休業日 (closed): {reason}\n"
            f"次の営業日 (next open day): {japanese_date(desk.next_open_day(day))}")


def source(desk: DeskCalendar) -> str:
    """Which file the desk's own days come from, and its review, so a surprise can be traced."""
    reviewed = desk.days
    return f"窓口の休業・臨時営業: {reviewed.path}（確認 {reviewed.reviewed_by}, {reviewed.reviewed_on}）"
