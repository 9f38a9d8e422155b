"""Eligibility's consumer: every received consultation gets a verdict.
Its handlers are given the service's Database."""
from services.eligibility.verdicting import judge
from shared import events as ev
from shared.db import Database
from shared.messaging import Delivery, Subscriptions

subscriptions = Subscriptions("eligibility")


@subscriptions.on(ev.ConsultationReceived)
async def received(deliveries: list[Delivery[ev.ConsultationReceived]], deps: Database) -> None:
    await judge(deliveries, deps)
