"""The scheduler's consumer: confirmed consultations get callback slots."""
from services.scheduler.booking import book_callbacks
from shared import events as ev
from shared.db import Database
from shared.messaging import Consumers, Delivery
from shared.settings import Settings


def register(consumers: Consumers, sessions: Database, settings: Settings) -> None:
    @consumers.on(ev.EligibilityConfirmed)
    async def confirmed(deliveries: list[Delivery[ev.EligibilityConfirmed]]) -> None:
        await book_callbacks(deliveries, sessions, settings)
