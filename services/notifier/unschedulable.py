"""Use case: a callback the scheduler could not book (no free slot within its horizon, for the
first call or for a later attempt). It is recorded, counted and logged, so a supervisor sees it
and the waiting watch knows the consultation waits for an operator rather than for an event,
and an operator gets an `unschedulable` task to arrange the contact, once per consultation.
"""
import logging

from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import insert

from services.notifier.orm import inbox, unschedulable_callbacks
from services.notifier.tasks import place_orders, unschedulable_order
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery

log = logging.getLogger("payhara.notifier")
CONSUMER = "notifier.unschedulable"
unschedulable_noted = Counter("payhara_unschedulable_callbacks",
                              "Consultations for which the scheduler found no callback slot")


async def note_unschedulable(deliveries: list[Delivery[ev.CallbackUnschedulable]], sessions: Database) -> None:
    async with sessions.begin() as session:
        fresh = await first_deliveries(session, inbox, CONSUMER, deliveries)
        if not fresh:
            return
        # one row per consultation, whatever event ids it came under (a relay may publish twice)
        noted = set((await session.execute(
            insert(unschedulable_callbacks).on_conflict_do_nothing()
            .returning(unschedulable_callbacks.c.consultation_id),
            [dict(consultation_id=d.event.consultation_id, receipt_no=d.event.receipt_no, reason=d.event.reason)
             for d in fresh])).scalars())
        await place_orders(session, [unschedulable_order(d.event) for d in fresh])  # one task: its unique key
    for event in {d.event.consultation_id: d.event for d in fresh if d.event.consultation_id in noted}.values():
        unschedulable_noted.inc()
        log.warning("no callback slot for receipt %s (consultation %s): %s; an operator must arrange the contact",
                    event.receipt_no, event.consultation_id, event.reason)
