"""Which service consumes which event, read from each service's handlers module, where every
subscription is declared once, above its handler. `payhara migrate` declares these queues and
bindings, `payhara asyncapi` documents them, and tests/unit/test_topology.py checks that every
handler has a binding and every binding a handler."""
from services.console.handlers import subscriptions as console
from services.eligibility.handlers import subscriptions as eligibility
from services.intake.handlers import subscriptions as intake
from services.notifier.handlers import subscriptions as notifier
from services.scheduler.handlers import subscriptions as scheduler

SUBSCRIPTIONS = {s.service: s.events for s in (intake, eligibility, scheduler, notifier, console)}
