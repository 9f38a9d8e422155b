"""Composition root of the notifier: settings, database, SMTP, broker, consumers, the waiting
watch, HTTP."""
from functools import partial

from fastapi import FastAPI

from services.notifier import handlers
from services.notifier.acknowledging import watch_held
from services.notifier.orm import outbox
from services.notifier.sending import SmtpMailer
from services.notifier.waiting import watch
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings

SERVICE = "notifier"


def create_app(settings: Settings | None = None) -> FastAPI:
    runtime = ServiceRuntime.assemble(SERVICE, settings or get_settings(), outbox)
    mailer = SmtpMailer(runtime.settings)
    runtime.consumers.include(handlers.subscriptions, handlers.Notifier(runtime.sessions, runtime.settings, mailer))
    runtime.alongside("waiting_watch", partial(watch, runtime.sessions, runtime.settings))
    runtime.alongside("smtp_sessions", mailer.keep_sessions)
    runtime.alongside("held_receipts", partial(watch_held, runtime.sessions, mailer, runtime.settings))
    return runtime.app()
