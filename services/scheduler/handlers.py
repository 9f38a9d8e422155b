"""The scheduler's consumer: confirmed consultations get callback slots.
Its handlers are given the ServiceRuntime (sessions and settings)."""
from services.scheduler.booking import book_callbacks
from shared import events as ev
from shared.messaging import Delivery, Subscriptions
from shared.runtime import ServiceRuntime

subscriptions = Subscriptions("scheduler")


@subscriptions.on(ev.EligibilityConfirmed)
async def confirmed(deliveries: list[Delivery[ev.EligibilityConfirmed]], deps: ServiceRuntime) -> None:
    await book_callbacks(deliveries, deps.sessions, deps.settings)
