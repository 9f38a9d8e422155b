"""Composition root of eligibility: settings, database, broker, consumer. Its HTTP side is only
health, readiness and metrics; the registry is imported with `payhara members import`."""
from fastapi import FastAPI

from services.eligibility import handlers
from services.eligibility.orm import outbox
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "eligibility"


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = ServiceRuntime.assemble(SERVICE, settings or get_settings(), outbox)
    runtime.consumers.include(handlers.subscriptions, runtime.sessions)
    return runtime.app()
