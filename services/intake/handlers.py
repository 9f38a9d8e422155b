"""Intake's consumers: phone submissions become receipts; verdicts and schedules keep the
consultant's status view current. Its handlers are given the service's Database."""
from services.intake.consultations import follow, note_acknowledgements, note_availability
from services.intake.phone import take_phone_submissions
from shared import events as ev
from shared.db import Database
from shared.messaging import Delivery, Subscriptions

subscriptions = Subscriptions("intake")


@subscriptions.on(ev.ConsultationSubmitted)
async def submitted(deliveries: list[Delivery[ev.ConsultationSubmitted]], deps: Database) -> None:
    await take_phone_submissions(deliveries, deps)


@subscriptions.on(ev.EligibilityConfirmed)
async def confirmed(deliveries: list[Delivery[ev.EligibilityConfirmed]], deps: Database) -> None:
    await follow(deliveries, "eligible", deps, "intake.confirmed")


@subscriptions.on(ev.EligibilityRejected)
async def rejected(deliveries: list[Delivery[ev.EligibilityRejected]], deps: Database) -> None:
    await follow(deliveries, "ineligible", deps, "intake.rejected")


@subscriptions.on(ev.EligibilityReviewRequested)
async def review(deliveries: list[Delivery[ev.EligibilityReviewRequested]], deps: Database) -> None:
    await follow(deliveries, "under_review", deps, "intake.review")


@subscriptions.on(ev.CallbackScheduled)
async def scheduled(deliveries: list[Delivery[ev.CallbackScheduled]], deps: Database) -> None:
    await follow(deliveries, "scheduled", deps, "intake.scheduled", slot=lambda event: {
        "slot_starts_at": event.slot_starts_at, "slot_ends_at": event.slot_ends_at})


@subscriptions.on(ev.CallbackUnschedulable)
async def unschedulable(deliveries: list[Delivery[ev.CallbackUnschedulable]], deps: Database) -> None:
    # no slot could be found: the consultant stays "eligible" and an operator arranges contact
    await follow(deliveries, "eligible", deps, "intake.unschedulable")


@subscriptions.on(ev.EmailSent)
async def email_sent(deliveries: list[Delivery[ev.EmailSent]], deps: Database) -> None:
    await note_acknowledgements(deliveries, deps)


@subscriptions.on(ev.ScheduleAvailabilityChanged)
async def availability_changed(deliveries: list[Delivery[ev.ScheduleAvailabilityChanged]], deps: Database) -> None:
    await note_availability(deliveries, deps)


@subscriptions.on(ev.CallbackExhausted)
async def exhausted(deliveries: list[Delivery[ev.CallbackExhausted]], deps: Database) -> None:
    # the calls did not reach the consultant: the status page says how to reach the desk
    await follow(deliveries, "unreachable", deps, "intake.exhausted")
