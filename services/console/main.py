"""Composition root of the console: settings, database, broker, consumer, sessions, HTTP."""
from fastapi import FastAPI

from services.console import handlers, web
from services.console.orm import outbox
from shared.db import make_engine, make_sessions
from shared.logs import configure
from shared.messaging import make_broker
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "console"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure(SERVICE)
    engine = make_engine(settings)
    sessions = make_sessions(engine)
    broker = make_broker(settings, SERVICE)
    handlers.register(broker, sessions, settings)
    runtime = ServiceRuntime(SERVICE, settings, engine, sessions, broker, outbox)
    # no public API docs: everything here but the health routes is behind the operators' log-in
    app = FastAPI(title="payhara-desk console", lifespan=runtime.lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    web.add_sessions(app, settings)
    app.include_router(runtime.health_router())
    app.include_router(web.router(sessions))
    return app
