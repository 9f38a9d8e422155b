"""The console's consumer: each task the notifier issues joins the operators' list."""
from faststream.rabbit import RabbitBroker

from services.console.tasks import record_task
from shared import events as ev
from shared.db import Database
from shared.messaging import consumes
from shared.settings import Settings

SERVICE = "console"


def register(broker: RabbitBroker, sessions: Database, settings: Settings) -> None:
    @consumes(broker, SERVICE, ev.TaskIssued, settings)
    async def task_issued(event: ev.TaskIssued, envelope: ev.Envelope) -> None:
        await record_task(event, envelope, sessions)
