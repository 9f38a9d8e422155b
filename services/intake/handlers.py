"""Intake's consumers: verdicts and schedules keep the consultant's status view current."""
from faststream.rabbit import RabbitBroker

from services.intake.consultations import follow, note_acknowledgement
from shared import events as ev
from shared.db import Database
from shared.messaging import consumes
from shared.settings import Settings

SERVICE = "intake"


def register(broker: RabbitBroker, sessions: Database, settings: Settings) -> None:
    def on(event_type):
        return consumes(broker, SERVICE, event_type, settings)

    @on(ev.EligibilityConfirmed)
    async def confirmed(event: ev.EligibilityConfirmed, envelope: ev.Envelope) -> None:
        await follow(envelope, event.consultation_id, "eligible", sessions, "intake.confirmed")

    @on(ev.EligibilityRejected)
    async def rejected(event: ev.EligibilityRejected, envelope: ev.Envelope) -> None:
        await follow(envelope, event.consultation_id, "ineligible", sessions, "intake.rejected")

    @on(ev.EligibilityReviewRequested)
    async def review(event: ev.EligibilityReviewRequested, envelope: ev.Envelope) -> None:
        await follow(envelope, event.consultation_id, "under_review", sessions, "intake.review")

    @on(ev.CallbackScheduled)
    async def scheduled(event: ev.CallbackScheduled, envelope: ev.Envelope) -> None:
        await follow(envelope, event.consultation_id, "scheduled", sessions, "intake.scheduled",
                     slot_starts_at=event.slot_starts_at, slot_ends_at=event.slot_ends_at)

    @on(ev.CallbackUnschedulable)
    async def unschedulable(event: ev.CallbackUnschedulable, envelope: ev.Envelope) -> None:
        # no slot could be found: the consultant stays "eligible" and an operator arranges contact
        await follow(envelope, event.consultation_id, "eligible", sessions, "intake.unschedulable")

    @on(ev.EmailSent)
    async def email_sent(event: ev.EmailSent, envelope: ev.Envelope) -> None:
        await note_acknowledgement(envelope, event, sessions)
