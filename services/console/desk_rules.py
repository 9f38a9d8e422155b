"""Pure rules of the supervisors' view (supervisor_pages.py): how open tasks fall into the backlog's
rows, how the promise share and an age read. No database, no clock: the caller passes `today`."""
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice

from shared.calendar import WEEKDAYS_JA

BACKLOG_DAYS = 10  # open days shown one by one, from today
OVERDUE, NO_DUE, LATER = "期限超過", "期日なし", "それ以降"


@dataclass(frozen=True)
class BacklogRow:
    label: str
    day: date | None  # None for the lumped rows (overdue, later, no due day)
    tasks: int
    by_kind: dict[str, int] = field(default_factory=dict)
    overdue: bool = False


def day_label(day: date, today: date) -> str:
    """`12/2(水)`, today's as `今日 12/2(水)`."""
    label = f"{day.month}/{day.day}({WEEKDAYS_JA[day.weekday()]})"
    return f"今日 {label}" if day == today else label


def backlog_rows(groups: Iterable[tuple[str, date | None, str, int]], today: date,
                 open_days: Iterable[date]) -> list[BacklogRow]:
    """The backlog by due day: 期限超過 first, then each of the next BACKLOG_DAYS open days from
    today (a closed day among them only when something is due on it), then それ以降 (only when
    something is), then 期日なし. `groups`: (bucket 'overdue'|'day'|'none', Japan due day, kind, count)."""
    window = list(islice(open_days, BACKLOG_DAYS))
    last = window[-1] if window else today
    counts: dict[object, dict[str, int]] = {}
    for bucket, day, kind, n in groups:
        if bucket == "overdue":
            key = OVERDUE
        elif bucket == "none":
            key = NO_DUE
        else:
            key = day if day <= last else LATER
            key = today if key != LATER and key < today else key  # due earlier today is not overdue yet
        by_kind = counts.setdefault(key, {})
        by_kind[kind] = by_kind.get(kind, 0) + n
    days = sorted(set(window) | {k for k in counts if isinstance(k, date)})

    def row(key, label, day=None, overdue=False):
        by_kind = counts.get(key, {})
        return BacklogRow(label, day, sum(by_kind.values()), dict(sorted(by_kind.items())), overdue)
    rows = [row(OVERDUE, OVERDUE, overdue=True)] + [row(d, day_label(d, today), d) for d in days]
    if LATER in counts:
        rows.append(row(LATER, f"{LATER}（{day_label(last + timedelta(days=1), today)}〜）"))
    return rows + [row(NO_DUE, NO_DUE)]


def share_percent(within: int, late: int) -> float | None:
    """Within the promise, in percent of the decided consultations (one decimal); None without any."""
    decided = within + late
    return round(100 * within / decided, 1) if decided else None


def age_label(age: timedelta) -> str:
    """`2日3時間`, `5時間12分`, `8分` (never negative)."""
    minutes = max(int(age.total_seconds() // 60), 0)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days}日{hours}時間"
    return f"{hours}時間{mins}分" if hours else f"{mins}分"
