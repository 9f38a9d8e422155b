"""The notifier's consumers: acknowledge receipts, issue tasks for operators."""
from faststream.rabbit import RabbitBroker

from services.notifier import tasks
from services.notifier.acknowledging import acknowledge
from services.notifier.sending import Mailer
from shared import events as ev
from shared.db import Database
from shared.messaging import consumes
from shared.settings import Settings

SERVICE = "notifier"


def register(broker: RabbitBroker, sessions: Database, settings: Settings, mailer: Mailer) -> None:
    def on(event_type):
        return consumes(broker, SERVICE, event_type, settings)

    @on(ev.ConsultationReceived)
    async def received(event: ev.ConsultationReceived, envelope: ev.Envelope) -> None:
        await acknowledge(event, envelope, sessions, mailer, settings)

    @on(ev.CallbackScheduled)
    async def scheduled(event: ev.CallbackScheduled, envelope: ev.Envelope) -> None:
        await tasks.on_scheduled(event, envelope, sessions)

    @on(ev.EligibilityReviewRequested)
    async def review(event: ev.EligibilityReviewRequested, envelope: ev.Envelope) -> None:
        await tasks.on_review_requested(event, envelope, sessions)

    @on(ev.EligibilityRejected)
    async def rejected(event: ev.EligibilityRejected, envelope: ev.Envelope) -> None:
        await tasks.on_rejected(event, envelope, sessions)
