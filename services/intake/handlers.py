"""Intake's consumers: verdicts and schedules keep the consultant's status view current."""
from services.intake.consultations import follow, note_acknowledgements
from shared import events as ev
from shared.db import Database
from shared.messaging import Consumers, Delivery


def register(consumers: Consumers, sessions: Database) -> None:
    @consumers.on(ev.EligibilityConfirmed)
    async def confirmed(deliveries: list[Delivery[ev.EligibilityConfirmed]]) -> None:
        await follow(deliveries, "eligible", sessions, "intake.confirmed")

    @consumers.on(ev.EligibilityRejected)
    async def rejected(deliveries: list[Delivery[ev.EligibilityRejected]]) -> None:
        await follow(deliveries, "ineligible", sessions, "intake.rejected")

    @consumers.on(ev.EligibilityReviewRequested)
    async def review(deliveries: list[Delivery[ev.EligibilityReviewRequested]]) -> None:
        await follow(deliveries, "under_review", sessions, "intake.review")

    @consumers.on(ev.CallbackScheduled)
    async def scheduled(deliveries: list[Delivery[ev.CallbackScheduled]]) -> None:
        await follow(deliveries, "scheduled", sessions, "intake.scheduled", slot=lambda event: {
            "slot_starts_at": event.slot_starts_at, "slot_ends_at": event.slot_ends_at})

    @consumers.on(ev.CallbackUnschedulable)
    async def unschedulable(deliveries: list[Delivery[ev.CallbackUnschedulable]]) -> None:
        # no slot could be found: the consultant stays "eligible" and an operator arranges contact
        await follow(deliveries, "eligible", sessions, "intake.unschedulable")

    @consumers.on(ev.EmailSent)
    async def email_sent(deliveries: list[Delivery[ev.EmailSent]]) -> None:
        await note_acknowledgements(deliveries, sessions)
