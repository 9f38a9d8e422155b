"""The JSON API's bodies and answers, as pydantic models: they document the API (OpenAPI, for
clients and fuzzers) and check what comes in. Refusals are `Refusal` with a machine code."""
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.console.call_outcomes import MAX_NOTE
from shared.events import CallOutcome, Category, ContactMethod, TaskKind


class Refusal(BaseModel):
    code: str = Field(examples=["task_taken"])
    detail: str = Field(description="Japanese, for the operator")


class Contact(BaseModel):
    method: ContactMethod
    phone: str | None
    email: str | None


class Holder(BaseModel):
    id: int
    display_name: str
    until: datetime | None = Field(description="after this, another operator may take the task over")


class TaskOut(BaseModel):
    task_id: uuid.UUID
    consultation_id: uuid.UUID
    receipt_no: str
    kind: TaskKind
    kind_label: str
    reason: str | None
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


class OutcomeOut(BaseModel):
    task_id: uuid.UUID
    receipt_no: str
    booking_id: uuid.UUID
    attempt: int
    outcome: CallOutcome
    note_length: int
    recorded_at: datetime


class Candidate(BaseModel):
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


class DecisionOut(BaseModel):
    consultation_id: uuid.UUID
    receipt_no: str
    decision: Literal["confirm", "reject"]
    reason: str
    reason_label: str
    decided_at: datetime


class ReviewOut(BaseModel):
    consultation_id: uuid.UUID
    receipt_no: str
    reason: str | None = Field(description="eligibility's reason code; None until it arrives")
    reason_label: str | None
    candidates: list[Candidate]
    task: TaskOut | None = Field(description="the review task; None until the notifier's arrives")
    decision: DecisionOut | None
    decision_reasons: dict[str, dict[str, str]] = Field(description="decision -> reason code -> label")
    not_carried: list[str] = Field(description="what the consultant gave that the console is not told yet")

