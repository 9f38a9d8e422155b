"""The notifier's consumers: acknowledge receipts, tell a consultant the desk cannot take the
consultation (e-mail or an operator), issue tasks for operators and tell the consultant when
the desk will call, note callbacks that could not be booked, fall back to e-mail or an operator
when calls did not reach.
Its handlers are given a Notifier: the database, the settings and the mailer."""
from dataclasses import dataclass

from services.notifier import tasks
from services.notifier.acknowledging import acknowledge
from services.notifier.booked import booked
from services.notifier.declining import decline
from services.notifier.fallback import fall_back
from services.notifier.sending import Mailer
from services.notifier.unschedulable import note_unschedulable
from shared import events as ev
from shared.db import Database
from shared.messaging import Delivery, Subscriptions
from shared.settings import Settings

subscriptions = Subscriptions("notifier")


@dataclass(frozen=True)
class Notifier:
    sessions: Database
    settings: Settings
    mailer: Mailer


@subscriptions.on(ev.ConsultationReceived)
async def received(deliveries: list[Delivery[ev.ConsultationReceived]], deps: Notifier) -> None:
    await acknowledge(deliveries, deps.sessions, deps.mailer, deps.settings)


@subscriptions.on(ev.CallbackScheduled)
async def scheduled(deliveries: list[Delivery[ev.CallbackScheduled]], deps: Notifier) -> None:
    await booked(deliveries, deps.sessions, deps.mailer, deps.settings)


@subscriptions.on(ev.EligibilityReviewRequested)
async def review(deliveries: list[Delivery[ev.EligibilityReviewRequested]], deps: Notifier) -> None:
    await tasks.order_tasks(deliveries, deps.sessions, "notifier.review", tasks.review_order)


@subscriptions.on(ev.EligibilityRejected)
async def rejected(deliveries: list[Delivery[ev.EligibilityRejected]], deps: Notifier) -> None:
    await decline(deliveries, deps.sessions, deps.mailer, deps.settings)


@subscriptions.on(ev.CallbackUnschedulable)
async def unschedulable(deliveries: list[Delivery[ev.CallbackUnschedulable]], deps: Notifier) -> None:
    await note_unschedulable(deliveries, deps.sessions)


@subscriptions.on(ev.CallbackExhausted)
async def exhausted(deliveries: list[Delivery[ev.CallbackExhausted]], deps: Notifier) -> None:
    await fall_back(deliveries, deps.sessions, deps.mailer, deps.settings)
