"""Composition root of intake: settings, database, broker, consumers, HTTP."""
from fastapi import APIRouter, FastAPI

from services.intake import api, handlers, protection, unavailable, web
from services.intake.consultations import Submissions
from services.intake.orm import outbox
from shared.db import Database
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "intake"


def routes(sessions: Database, settings: Settings) -> APIRouter:
    """The JSON API and the pages, over one set of use cases."""
    submissions = Submissions(sessions)
    both = APIRouter()
    both.include_router(api.router(sessions, submissions))
    both.include_router(web.router(sessions, settings, submissions), include_in_schema=False)  # pages, not API
    return both


def create_app(settings: Settings | None = None) -> FastAPI:
    # ready while the broker is away: the outbox keeps the events until it is back
    runtime = ServiceRuntime.assemble(SERVICE, settings or get_settings(), outbox, serves_without_broker=True)
    runtime.consumers.include(handlers.subscriptions, runtime.sessions)
    app = runtime.app(docs_url=None, redoc_url=None)  # Swagger UI from a CDN cannot run under the CSP
    app.include_router(routes(runtime.sessions, runtime.settings))
    unavailable.install(app, web.templates)
    protection.install(app, runtime.settings)
    return app
