"""The notifier's consumers: acknowledge receipts, issue tasks for operators."""
from services.notifier import tasks
from services.notifier.acknowledging import acknowledge
from services.notifier.sending import Mailer
from shared import events as ev
from shared.db import Database
from shared.messaging import Consumers, Delivery
from shared.settings import Settings


def register(consumers: Consumers, sessions: Database, settings: Settings, mailer: Mailer) -> None:
    @consumers.on(ev.ConsultationReceived)
    async def received(deliveries: list[Delivery[ev.ConsultationReceived]]) -> None:
        await acknowledge(deliveries, sessions, mailer, settings)

    @consumers.on(ev.CallbackScheduled)
    async def scheduled(deliveries: list[Delivery[ev.CallbackScheduled]]) -> None:
        await tasks.order_tasks(deliveries, sessions, "notifier.scheduled", tasks.scheduled_order)

    @consumers.on(ev.EligibilityReviewRequested)
    async def review(deliveries: list[Delivery[ev.EligibilityReviewRequested]]) -> None:
        await tasks.order_tasks(deliveries, sessions, "notifier.review", tasks.review_order)

    @consumers.on(ev.EligibilityRejected)
    async def rejected(deliveries: list[Delivery[ev.EligibilityRejected]]) -> None:
        await tasks.order_tasks(deliveries, sessions, "notifier.rejected", tasks.decline_order)
