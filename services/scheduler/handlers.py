"""The scheduler's consumers: confirmed consultations get callback slots; an operator's call
outcome closes the booking or books its next attempt.
Its handlers are given the ServiceRuntime (sessions and settings)."""
from services.scheduler.attempts import record_outcomes
from services.scheduler.booking import book_callbacks
from shared import events as ev
from shared.messaging import Delivery, Subscriptions
from shared.runtime import ServiceRuntime

subscriptions = Subscriptions("scheduler")


@subscriptions.on(ev.EligibilityConfirmed)
async def confirmed(deliveries: list[Delivery[ev.EligibilityConfirmed]], deps: ServiceRuntime) -> None:
    await book_callbacks(deliveries, deps.sessions, deps.settings)


@subscriptions.on(ev.CallOutcomeRecorded)
async def call_outcome(deliveries: list[Delivery[ev.CallOutcomeRecorded]], deps: ServiceRuntime) -> None:
    await record_outcomes(deliveries, deps.sessions, deps.settings)
