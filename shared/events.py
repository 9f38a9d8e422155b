"""The envelope and the v1 event contracts exchanged between services.

Within a version, fields are only added; consumers ignore fields they do not know.
Each event's routing key is `<aggregate>.<past-tense-event>.v<N>`.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Role = Literal["member", "medical_staff", "care_staff"]
ContactMethod = Literal["phone", "email"]
PreferredTime = Literal["morning", "afternoon", "any"]  # when a consultant would rather be called
Category = Literal["in_person", "online", "both"]
# added within v1: "bounced", an e-mail to the consultant that could not be delivered
TaskKind = Literal["call", "email", "review", "decline", "unreachable", "unschedulable", "bounced"]
CallOutcome = Literal["reached", "no_answer", "wrong_number"]
ExhaustedReason = Literal["no_answer_after_last_attempt", "wrong_number"]


class Event(BaseModel):
    """Payload of one event; subclasses name their routing key."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    routing_key: ClassVar[str]


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    occurred_at: AwareDatetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    correlation_id: uuid.UUID
    schema_version: int
    data: dict


E = TypeVar("E", bound=Event)


def wrap(event: Event, correlation_id: uuid.UUID) -> Envelope:
    version = int(event.routing_key.rsplit(".v", 1)[1])
    return Envelope(
        event_type=event.routing_key,
        correlation_id=correlation_id,
        schema_version=version,
        data=event.model_dump(mode="json"),
    )


def unwrap(body: bytes | str, event_type: type[E]) -> tuple[Envelope, E]:
    """Parse a message body; raises pydantic.ValidationError on a malformed message."""
    envelope = Envelope.model_validate_json(body)
    if envelope.event_type != event_type.routing_key:
        raise ValueError(f"expected {event_type.routing_key}, got {envelope.event_type}")
    return envelope, event_type.model_validate(envelope.data)


# --- parts carried by several events -------------------------------------------------------

class Consultant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    name_kana: str
    role: Role
    member_no: str | None = None


class InstitutionInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str | None = None
    prefecture: str | None = None
    manager_member_no: str | None = None


class Contact(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    method: ContactMethod
    phone: str | None = None
    email: str | None = None


# --- intake -----------------------------------------------------------------------------------

class PostRef(BaseModel):
    """The address of a reported post and its platform (google_maps, x, instagram, facebook,
    youtube, tiktok, line, 5ch, bakusai, medical_review, other), for routing the case."""
    model_config = ConfigDict(extra="ignore", frozen=True)
    url: str
    platform: str


class ConsultationReceived(Event):
    routing_key: ClassVar[str] = "consultation.received.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    channel: Literal["web", "phone"]
    received_at: AwareDatetime
    contact_expected_from: date
    consultant: Consultant
    institution: InstitutionInfo
    contact: Contact
    category: Category
    summary: str
    urls: list[str] = []
    posts: list[PostRef] = []  # added within v1: the urls, each with its platform
    # the desk was busy when received: contact_expected_from is later than the calendar gives
    contact_may_take_longer: bool = False
    # added within v1: the consultant asks for an urgent callback, and when they would rather be called
    urgent: bool = False
    preferred_time: PreferredTime = "any"
    # added within v1: the console's submission this receipt answers (phone channel), so the
    # operator can read the receipt number back to the caller; None for the web
    submission_id: uuid.UUID | None = None


class ConsultationSubmitted(Event):
    """A consultation an operator took on the phone and entered in the console; intake validates
    `form` with the web form's own rules and answers with consultation.received.v1 (its
    submission_id names this submission) or consultation.submission_refused.v1. The envelope's
    correlation_id is the submission_id: there is no consultation yet."""

    routing_key: ClassVar[str] = "consultation.submitted.v1"
    submission_id: uuid.UUID
    channel: Literal["phone"]
    operator_id: str = Field(min_length=1, max_length=64)
    submitted_at: AwareDatetime
    # The status code is a secret and never travels: the console makes it, shows it to the
    # operator to read out, and sends its hex SHA-256 (services/intake/receipts.hash_token).
    status_token_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    form: dict  # the JSON API's body (services/intake/forms.py), checked by intake, not here


class SubmissionProblem(BaseModel):
    """One reason a submission was refused: the field, a machine code, a Japanese message."""
    model_config = ConfigDict(extra="ignore", frozen=True)
    field: str
    code: str
    message: str


class ConsultationSubmissionAccepted(Event):
    """Intake received a phone submission: the receipt number and promise the operator reads back
    to the caller (the full consultation.received.v1 goes to the services that work on it). The
    envelope's correlation_id is the consultation id."""

    routing_key: ClassVar[str] = "consultation.submission_accepted.v1"
    submission_id: uuid.UUID
    operator_id: str
    consultation_id: uuid.UUID
    receipt_no: str
    contact_expected_from: date
    contact_may_take_longer: bool = False


class ConsultationSubmissionRefused(Event):
    """Intake refused a phone submission (a field the operator must correct); nothing was
    recorded. The envelope's correlation_id is the submission_id."""

    routing_key: ClassVar[str] = "consultation.submission_refused.v1"
    submission_id: uuid.UUID
    operator_id: str
    errors: list[SubmissionProblem]


# --- eligibility ------------------------------------------------------------------------------

class EligibilityConfirmed(Event):
    routing_key: ClassVar[str] = "eligibility.confirmed.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    reason: str
    contact_expected_from: date
    # added within v1, copied from the consultation: what the scheduler books by
    urgent: bool = False
    preferred_time: PreferredTime = "any"
    contact_method: ContactMethod = "phone"
    decided_by: str | None = None  # added within v1: the operator who decided; None, the registry


class EligibilityRejected(Event):
    routing_key: ClassVar[str] = "eligibility.rejected.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    reason: str
    decided_by: str | None = None  # added within v1: the operator who decided; None, the registry


class ReviewCandidate(BaseModel):
    """A registry entry close to what the consultant gave, for the operator who reviews."""
    model_config = ConfigDict(extra="ignore", frozen=True)
    ref: str  # a member number or an institution id
    name: str  # the registry's name
    why: str  # machine code: why it is close (same_name, other_kind, similar_name, ...)


class EligibilityReviewRequested(Event):
    routing_key: ClassVar[str] = "eligibility.review_requested.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    reason: str
    candidates: list[ReviewCandidate] = []  # added within v1: at most 5


class EligibilityDecided(Event):
    """An operator's decision on a consultation under review; eligibility applies the first one
    and publishes the final verdict (the operator's note stays in the console)."""
    routing_key: ClassVar[str] = "eligibility.decided.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    operator_id: str = Field(min_length=1, max_length=64)
    decision: Literal["confirm", "reject"]
    reason: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")  # a reason code, never free text
    decided_at: AwareDatetime


# --- scheduler --------------------------------------------------------------------------------

class CallbackScheduled(Event):
    routing_key: ClassVar[str] = "callback.scheduled.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    booking_id: uuid.UUID
    slot_starts_at: AwareDatetime
    slot_ends_at: AwareDatetime
    attempt: int = Field(default=1, ge=1)  # added within v1: the booking's n-th call
    # added within v1: every open day within the horizon was full, so the callback is later
    beyond_horizon: bool = False
    # added within v1: a reply by e-mail due that day; the slot spans the day's opening hours
    by_email: bool = False


class CallbackUnschedulable(Event):
    routing_key: ClassVar[str] = "callback.unschedulable.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    reason: str


class CallOutcomeRecorded(Event):
    """An operator's call at a booked attempt, as the console records it. The operator's note
    stays in the console: only its length travels (it is personal data)."""

    routing_key: ClassVar[str] = "call.outcome_recorded.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    booking_id: uuid.UUID
    attempt: int = Field(ge=1)
    outcome: CallOutcome
    operator_id: str
    note_length: int = Field(ge=0)
    recorded_at: AwareDatetime


class CallbackExhausted(Event):
    """No more calls will be booked: the last attempt went unanswered, or the number is wrong."""

    routing_key: ClassVar[str] = "callback.exhausted.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    booking_id: uuid.UUID
    attempts: int = Field(ge=1)
    reason: ExhaustedReason


class ScheduleAvailabilityChanged(Event):
    """The first open day on which a consultation received now can still get a callback, as the
    scheduler sees it; published whenever it changes (event-carried state for intake's promise)."""

    routing_key: ClassVar[str] = "schedule.availability_changed.v1"
    first_free_day: date
    busy: bool  # later than the calendar alone would promise: the desk is busy
    as_of: AwareDatetime
    # added within v1: the same for a reply by e-mail, which has its own daily capacity
    first_free_email_day: date | None = None


# --- notifier ---------------------------------------------------------------------------------

class EmailSent(Event):
    routing_key: ClassVar[str] = "notification.email_sent.v1"
    consultation_id: uuid.UUID
    receipt_no: str
    kind: str
    message_id: str
    # added within v1: the booked callback's attempt (callback_booked); 1 for every other kind
    attempt: int = Field(default=1, ge=1)
    # added within v1: the kinds this same mail told besides its own, at attempt 1 (a receipt
    # that told the first booked callback: ["callback_booked"])
    also_told: list[str] = []


class TaskIssued(Event):
    """A piece of work for an operator: call or write to a consultant, or review a verdict."""

    routing_key: ClassVar[str] = "task.issued.v1"
    task_id: uuid.UUID
    consultation_id: uuid.UUID
    receipt_no: str
    kind: TaskKind
    reason: str | None = None
    due_starts_at: AwareDatetime | None = None
    due_ends_at: AwareDatetime | None = None
    # added within v1: a call task's booking and attempt, which the console's call outcome names
    booking_id: uuid.UUID | None = None
    attempt: int = Field(default=1, ge=1)
    consultant_name: str
    contact: Contact
    category: Category
    summary: str
    urls: list[str] = []
    # added within v1: the day promised to the consultant (the supervisors' promise share)
    contact_expected_from: date | None = None
    # added within v1: what the operator needs about the consultation (None / [] / False on
    # tasks issued before, or from a copy kept before the notifier kept these)
    name_kana: str | None = None
    role: Role | None = None
    member_no: str | None = None
    institution: InstitutionInfo | None = None
    preferred_time: PreferredTime | None = None
    urgent: bool = False
    posts: list[PostRef] = []


ALL_EVENTS: tuple[type[Event], ...] = (
    ConsultationReceived,
    ConsultationSubmitted,
    ConsultationSubmissionAccepted,
    ConsultationSubmissionRefused,
    EligibilityConfirmed,
    EligibilityRejected,
    EligibilityReviewRequested,
    EligibilityDecided,
    CallbackScheduled,
    CallbackUnschedulable,
    CallOutcomeRecorded,
    CallbackExhausted,
    ScheduleAvailabilityChanged,
    EmailSent,
    TaskIssued,
)
