"""The scheduler's consumer: a confirmed consultation gets a callback slot."""
from faststream.rabbit import RabbitBroker

from services.scheduler.booking import book_callback
from shared import events as ev
from shared.db import Database
from shared.messaging import consumes
from shared.settings import Settings

SERVICE = "scheduler"


def register(broker: RabbitBroker, sessions: Database, settings: Settings) -> None:
    @consumes(broker, SERVICE, ev.EligibilityConfirmed, settings)
    async def confirmed(event: ev.EligibilityConfirmed, envelope: ev.Envelope) -> None:
        await book_callback(event, envelope, sessions, settings)
