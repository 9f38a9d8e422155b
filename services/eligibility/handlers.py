"""Eligibility's consumers: every received consultation gets a verdict; an operator's decision on
one under review becomes its final verdict. Its handlers are given the service's Database."""
from services.eligibility.decisions import decide
from services.eligibility.verdicting import judge
from shared import events as ev
from shared.db import Database
from shared.messaging import Delivery, Subscriptions

subscriptions = Subscriptions("eligibility")


@subscriptions.on(ev.ConsultationReceived)
async def received(deliveries: list[Delivery[ev.ConsultationReceived]], deps: Database) -> None:
    await judge(deliveries, deps)


@subscriptions.on(ev.EligibilityDecided)
async def decided(deliveries: list[Delivery[ev.EligibilityDecided]], deps: Database) -> None:
    await decide(deliveries, deps)
