"""Composition root of the console: settings, database, consumer, sessions, HTTP."""
from fastapi import FastAPI

from services.console import handlers, phone_entry, web
from services.console.orm import outbox
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "console"


def create_app(settings: Settings | None = None) -> FastAPI:
    # operators keep working while the broker is away: their decisions wait in the outbox
    runtime = ServiceRuntime.assemble(SERVICE, settings or get_settings(), outbox, serves_without_broker=True)
    runtime.consumers.include(handlers.subscriptions, runtime.sessions)
    # no public API docs: everything here but the health routes is behind the operators' log-in
    app = runtime.app(docs_url=None, redoc_url=None, openapi_url=None)
    logins = web.install(app, runtime.sessions, runtime.settings)
    runtime.alongside("session_purge", logins.purge_forever)
    runtime.alongside("phone_purge", lambda: phone_entry.purge_forever(runtime.sessions, runtime.settings, web.utc_now))
    return app
