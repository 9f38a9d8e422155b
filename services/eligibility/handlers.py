"""Eligibility's consumer: every received consultation gets a verdict."""
from faststream.rabbit import RabbitBroker

from services.eligibility.verdicting import judge
from shared import events as ev
from shared.db import Database
from shared.messaging import consumes
from shared.settings import Settings

SERVICE = "eligibility"


def register(broker: RabbitBroker, sessions: Database, settings: Settings) -> None:
    @consumes(broker, SERVICE, ev.ConsultationReceived, settings)
    async def received(event: ev.ConsultationReceived, envelope: ev.Envelope) -> None:
        await judge(event, envelope, sessions)
