"""Composition root of the notifier: settings, database, SMTP, broker, consumers, HTTP."""
from fastapi import FastAPI

from services.notifier import handlers
from services.notifier.orm import outbox
from services.notifier.sending import SmtpMailer
from shared.db import make_engine, make_sessions
from shared.logs import configure
from shared.messaging import make_broker
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "notifier"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure(SERVICE)
    engine = make_engine(settings)
    sessions = make_sessions(engine)
    broker = make_broker(settings, SERVICE)
    handlers.register(broker, sessions, settings, SmtpMailer(settings))
    runtime = ServiceRuntime(SERVICE, settings, engine, sessions, broker, outbox)
    app = FastAPI(title="payhara-desk notifier", lifespan=runtime.lifespan)
    app.include_router(runtime.health_router())
    return app
