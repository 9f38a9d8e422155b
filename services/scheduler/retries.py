"""Pure rules of a booking's call attempts: what an operator's call outcome leads to, and from
when the next attempt may be booked. No I/O; aware datetimes in."""
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import islice

from shared.calendar import business_days_from, japan_date

NO_ANSWER_AFTER_LAST_ATTEMPT = "no_answer_after_last_attempt"
WRONG_NUMBER = "wrong_number"


@dataclass(frozen=True)
class CallPolicy:
    """How often and how soon the desk calls again (PAYHARA_NEXT_ATTEMPT_AFTER_MINUTES,
    PAYHARA_MAX_ATTEMPTS): a consultant who did not answer is not called again at once."""

    next_attempt_after: timedelta = timedelta(hours=2)
    max_attempts: int = 3

    @classmethod
    def of(cls, settings) -> "CallPolicy":
        return cls(timedelta(minutes=settings.next_attempt_after_minutes), settings.max_attempts)
@dataclass(frozen=True)
class Reached:
    """The consultant was reached: the booking is closed."""


@dataclass(frozen=True)
class NextAttempt:
    """Book attempt `attempt` in the first open slot starting at or after `not_before`."""

    attempt: int
    not_before: datetime


@dataclass(frozen=True)
class Exhausted:
    """No more calls: the notifier falls back to e-mail or an operator."""

    attempts: int
    reason: str


def after_outcome(outcome: str, attempt: int, recorded_at: datetime, slot_ends_at: datetime, now: datetime,
                  policy: CallPolicy = CallPolicy()) -> Reached | NextAttempt | Exhausted:
    """What the outcome of call `attempt` (booked in a slot ending at `slot_ends_at`) leads to.
    The next attempt is never in the same slot or an earlier one (a call recorded before its
    slot), nor in the past (an outcome handled late, the scheduler was down)."""
    if outcome == "reached":
        return Reached()
    if outcome == "wrong_number":
        return Exhausted(attempt, WRONG_NUMBER)
    if attempt >= policy.max_attempts:
        return Exhausted(attempt, NO_ANSWER_AFTER_LAST_ATTEMPT)
    return NextAttempt(attempt + 1, max(recorded_at + policy.next_attempt_after, slot_ends_at, now))


def retry_days(not_before: datetime, horizon: int) -> list[date]:
    """The open days on which the next attempt may fall, earliest first: the Japan date of
    `not_before` itself if the desk is open then (its slots after `not_before` only), then each
    following open day, up to `horizon` days."""
    return list(islice(business_days_from(japan_date(not_before)), max(horizon, 0)))
