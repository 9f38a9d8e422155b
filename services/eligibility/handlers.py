"""Eligibility's consumer: every received consultation gets a verdict."""
from services.eligibility.verdicting import judge
from shared import events as ev
from shared.db import Database
from shared.messaging import Consumers, Delivery


def register(consumers: Consumers, sessions: Database) -> None:
    @consumers.on(ev.ConsultationReceived)
    async def received(deliveries: list[Delivery[ev.ConsultationReceived]]) -> None:
        await judge(deliveries, sessions)
