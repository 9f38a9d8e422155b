"""Composition root of the console: settings, database, consumer, sessions, HTTP."""
from fastapi import FastAPI

from services.console import api_docs, data_views, handlers, phone_entry, web
from services.console.orm import outbox
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "console"


def create_app(settings: Settings | None = None) -> FastAPI:
    # operators keep working while the broker is away: their decisions wait in the outbox
    runtime = ServiceRuntime.assemble(SERVICE, settings or get_settings(), outbox, serves_without_broker=True)
    runtime.consumers.include(handlers.subscriptions, runtime.sessions)
    # no public API docs: the document, like everything but the health routes, is behind the
    # operators' log-in (the guard), and there are no docs pages (they would need scripts)
    app = runtime.app(docs_url=None, redoc_url=None, openapi_url=api_docs.OPENAPI_URL)
    logins = web.install(app, runtime.sessions, runtime.settings)
    keep_days = runtime.settings.console_data_views_keep_days
    runtime.alongside("session_purge", lambda: logins.purge_forever(
        also=lambda: data_views.purge(runtime.sessions, web.utc_now(), keep_days)))
    runtime.alongside("phone_purge", lambda: phone_entry.purge_forever(runtime.sessions, runtime.settings, web.utc_now))
    return app
