"""The JSON API's bodies and answers, as pydantic models: they document the API (OpenAPI at
/api/openapi.json, for clients and fuzzers) and check what comes in. Answers are strict (no field
they do not name), so the document and what the routes send cannot drift apart unnoticed.
Refusals are `Refusal` with a machine code."""
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from services.console.accounts import MAX_TEXT_CHARS
from services.console.call_outcomes import MAX_NOTE
from services.console.phone_form import MAX_MULTILINE
from shared.events import CallOutcome, Category, ContactMethod, PreferredTime, Role, TaskKind


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Refusal(Answer):
    code: str = Field(examples=["task_taken"])
    detail: str = Field(description="Japanese, for the operator")


class Credentials(BaseModel):
    login: str = Field(max_length=MAX_TEXT_CHARS)
    password: str = Field(max_length=MAX_TEXT_CHARS)


class OperatorOut(Answer):
    id: int
    login: str
    display_name: str
    role: Literal["operator", "supervisor"]
    role_label: str


class SessionOut(Answer):
    csrf_token: str = Field(description="send it as the X-CSRF-Token header with every write")
    operator: OperatorOut


class Contact(Answer):
    method: ContactMethod
    phone: str | None = Field(description="as the consultant typed it")
    phone_label: str | None = Field(description="as written in Japan (03-1234-5678); as typed if it is no number")
    email: str | None


class Holder(Answer):
    id: int
    display_name: str
    until: datetime | None = Field(description="after this, another operator may take the task over")


class TaskRef(Answer):
    """A task without the consultant's personal data: what a board or a poller needs."""
    task_id: uuid.UUID
    consultation_id: uuid.UUID
    receipt_no: str
    kind: TaskKind
    due_starts_at: datetime | None
    due_ends_at: datetime | None
    attempt: int = Field(ge=1)
    status: Literal["open", "done"]


class TaskOut(Answer):
    task_id: uuid.UUID
    consultation_id: uuid.UUID
    receipt_no: str
    kind: TaskKind
    kind_label: str
    reason: str | None = Field(description="a code of the notifier's, or None")
    reason_label: str | None = Field(description="the reason in Japanese (その他（code） for a code not known yet)")
    due_starts_at: datetime | None
    due_ends_at: datetime | None
    consultant_name: str
    contact: Contact
    category: Category
    summary: str
    urls: list[str]
    issued_at: datetime
    status: Literal["open", "done"]
    booking_id: uuid.UUID | None = Field(description="a call task's booking")
    attempt: int = Field(ge=1)
    holder: Holder | None = Field(description="who claimed it; None: nobody")
    closed_at: datetime | None


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: CallOutcome
    note: str = Field(default="", max_length=MAX_NOTE, description="kept in the console, never published")


class OutcomeOut(Answer):
    task_id: uuid.UUID
    receipt_no: str
    booking_id: uuid.UUID
    attempt: int
    outcome: CallOutcome
    note_length: int
    recorded_at: datetime


class Candidate(Answer):
    ref: str
    name: str
    why: str
    why_label: str


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["confirm", "reject"]
    reason: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="a code of the decision's short list",
                        examples=["member_no_typo", "not_a_member"])
    note: str = Field(default="", max_length=MAX_NOTE, description="kept in the console, never published")


class DecisionOut(Answer):
    consultation_id: uuid.UUID
    receipt_no: str
    decision: Literal["confirm", "reject"]
    reason: str
    reason_label: str
    decided_at: datetime


class ReviewOut(Answer):
    consultation_id: uuid.UUID
    receipt_no: str
    reason: str | None = Field(description="eligibility's reason code; None until it arrives")
    reason_label: str | None
    candidates: list[Candidate]
    task: TaskOut | None = Field(description="the review task; None until the notifier's arrives")
    decision: DecisionOut | None
    decision_reasons: dict[str, dict[str, str]] = Field(description="decision -> reason code -> label")
    not_carried: list[str] = Field(description="what the consultant gave that the console is not told yet")


class DoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=MAX_NOTE, description="what was done; kept in the console, never published")


class DoneOut(Answer):
    task_id: uuid.UUID
    receipt_no: str
    kind: TaskKind
    closed_at: datetime
    note_length: int


class Viewer(Answer):
    id: int
    display_name: str
    login: str


class DataViewOut(Answer):
    id: int
    at: datetime
    operator: Viewer
    consultation_id: uuid.UUID
    receipt_no: str
    what: str = Field(examples=["queue", "task", "api_tasks"])
    what_label: str


class AuditOut(Answer):
    views: list[DataViewOut] = Field(description="newest first")
    next_before: int | None = Field(description="pass as `before` for the next page; None on the last")


# --- the phone line (phone_api.py): intake's JSON API's fields, as an operator types them ------

Line = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


class PhoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field would be lost on the way to intake


class PhoneConsultantIn(PhoneIn):
    name: Line
    name_kana: Line = Field(description="ひらがな or カタカナ (intake checks it)")
    role: Role
    member_no: Line | None = Field(default=None, description="a member's own number")


class PhoneInstitutionIn(PhoneIn):
    name: Line | None = Field(default=None, description="staff: the institution or facility")
    prefecture: Line | None = Field(default=None, examples=["東京都"])
    manager_member_no: Line | None = Field(default=None, description="its founder's or manager's member number")


class PhoneContactIn(PhoneIn):
    method: ContactMethod
    phone: Line | None = None
    email: Line | None = None


class PhoneConsultationIn(PhoneIn):
    """The consultation the caller gives, in the fields of intake's JSON API. The console checks
    their shape; intake checks the rest (readings, numbers, URLs, what each role needs) and its
    refusal comes back on the GET."""
    submission_id: uuid.UUID | None = Field(default=None, description=(
        "the client's id for this submission: sent again, the same submission (202 again, nothing "
        "published twice); with other contents, 409. Without it, the console makes one"))
    consultant: PhoneConsultantIn
    institution: PhoneInstitutionIn = Field(default_factory=PhoneInstitutionIn)
    contact: PhoneContactIn
    preferred_time: PreferredTime = "any"
    category: Category
    summary: str = Field(max_length=MAX_MULTILINE)
    urls: list[Line] = Field(default_factory=list, description="the posts' addresses (online posts)")
    urgent: bool = Field(default=False, description="the caller is in danger now")
    consent: bool = Field(description="the caller agreed to the handling of personal data")

    @field_validator("urls")
    @classmethod
    def _fit(cls, urls: list[str]) -> list[str]:
        if len("\n".join(urls)) > MAX_MULTILINE:  # what the phone form's URL box holds
            raise PydanticCustomError("too_long", "at most {max_length} characters in all",
                                      {"max_length": MAX_MULTILINE})
        return urls


class PhoneProblem(Answer):
    field: str = Field(description='a dotted path of the body ("consultant.name_kana", "urls.2"), or "body"')
    code: str = Field(examples=["missing", "kana_only"])
    message: str = Field(description="Japanese, for the operator")


class PhoneRefusal(Refusal):
    problems: list[PhoneProblem] = Field(min_length=1, description="every field the console refused, each with why")


class PhoneLinks(Answer):
    status: str = Field(description="GET it for intake's answer (pending until it arrives, within seconds)")


class PhoneSubmittedOut(Answer):
    submission_id: uuid.UUID = Field(description="the one to poll (another operator's id is never reused: a new one)")
    status: Literal["pending"]
    links: PhoneLinks


class PhoneConsultationOut(Answer):
    submission_id: uuid.UUID
    status: Literal["pending", "accepted", "refused"]
    submitted_at: datetime
    receipt_no: str | None = Field(description="accepted: the receipt number to read back to the caller")
    consultation_id: uuid.UUID | None
    contact_expected_from: date | None = Field(description="accepted: the day from which the desk contacts the caller")
    contact_may_take_longer: bool | None = Field(description="accepted: the desk is busy, say it may take days")
    status_token: str | None = Field(description=(
        "accepted: the caller's status code to read out, to the operator who entered it only, until "
        "status_token_until or its DELETE; never again after"))
    status_token_until: datetime | None
    problems: list[PhoneProblem] = Field(description="refused: what intake refused, field by field; to correct "
                                                     "and send as a new submission")
