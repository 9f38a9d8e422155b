"""Composition root of the scheduler: settings, database, broker, consumers, the availability
watch, health."""
from functools import partial

from fastapi import FastAPI

from services.scheduler import availability, handlers
from services.scheduler.orm import outbox
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "scheduler"


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = ServiceRuntime.assemble(SERVICE, settings or get_settings(), outbox)
    runtime.consumers.include(handlers.subscriptions, runtime)
    runtime.alongside("availability_watch", partial(availability.watch, runtime.sessions, runtime.settings))
    return runtime.app()
