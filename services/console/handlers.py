"""The console's consumer: each task the notifier issues joins the operators' list."""
from services.console.tasks import record_tasks
from shared import events as ev
from shared.db import Database
from shared.messaging import Consumers, Delivery


def register(consumers: Consumers, sessions: Database) -> None:
    @consumers.on(ev.TaskIssued)
    async def task_issued(deliveries: list[Delivery[ev.TaskIssued]]) -> None:
        await record_tasks(deliveries, sessions)
