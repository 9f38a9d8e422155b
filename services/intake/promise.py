"""The honest promise on a receipt: the day from which the desk will contact the consultant.

It is the later of what the desk calendar allows (same-day contact before the cutoff, else the
next open day: shared/calendar.py) and the first day the scheduler still has room on, as it last
said (schedule.availability_changed.v1). When the scheduler's day is the later one the desk is
busy, and the receipt, the status page and the e-mail say that contact may take several days.
Pure: no I/O, the caller passes what it read.
"""
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Promise:
    day: date
    may_take_longer: bool  # the desk is busy: the day is later than the calendar alone gives


def promised(calendar_day: date, first_free_day: date | None) -> Promise:
    if first_free_day is not None and first_free_day > calendar_day:
        return Promise(first_free_day, True)
    return Promise(calendar_day, False)
