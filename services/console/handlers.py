"""The console's consumer: each task the notifier issues joins the operators' list.
Its handlers are given the service's Database."""
from services.console.tasks import record_tasks
from shared import events as ev
from shared.db import Database
from shared.messaging import Delivery, Subscriptions

subscriptions = Subscriptions("console")


@subscriptions.on(ev.TaskIssued)
async def task_issued(deliveries: list[Delivery[ev.TaskIssued]], deps: Database) -> None:
    await record_tasks(deliveries, deps)
