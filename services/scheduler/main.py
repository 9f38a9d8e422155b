"""Composition root of the scheduler: settings, database, broker, consumer, health."""
from fastapi import FastAPI

from services.scheduler import handlers
from services.scheduler.orm import outbox
from shared.db import make_engine, make_sessions
from shared.logs import configure
from shared.messaging import make_broker
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "scheduler"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure(SERVICE)
    engine = make_engine(settings)
    sessions = make_sessions(engine)
    broker = make_broker(settings, SERVICE)
    handlers.register(broker, sessions, settings)
    runtime = ServiceRuntime(SERVICE, settings, engine, sessions, broker, outbox)
    app = FastAPI(title="payhara-desk scheduler", lifespan=runtime.lifespan)
    app.include_router(runtime.health_router())
    return app
