"""Composition root of intake: settings, database, broker, consumers, HTTP."""
from fastapi import FastAPI

from services.intake import api, handlers, unavailable
from services.intake.orm import outbox
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "intake"


def create_app(settings: Settings | None = None) -> FastAPI:
    # ready while the broker is away: the outbox keeps the events until it is back
    runtime = ServiceRuntime.assemble(SERVICE, settings or get_settings(), outbox, serves_without_broker=True)
    runtime.consumers.include(handlers.subscriptions, runtime.sessions)
    app = runtime.app()
    app.include_router(api.router(runtime.sessions, runtime.settings))
    unavailable.install(app, api.templates)
    return app
