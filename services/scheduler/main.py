"""Composition root of the scheduler: settings, database, broker, consumer, health."""
from fastapi import FastAPI

from services.scheduler import handlers
from services.scheduler.orm import outbox
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "scheduler"


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = ServiceRuntime.assemble(SERVICE, settings or get_settings(), outbox)
    runtime.consumers.include(handlers.subscriptions, runtime)
    return runtime.app()
