"""Use case: eligibility could not confirm the consultant (eligibility.rejected.v1, whatever its
reason). A consultant who asked to be contacted by e-mail gets one rejection e-mail in kind words
(mail.rejection: why, as far as the registry shows, how to have it checked by phone, where else
to turn), sent once like the acknowledgement (once.py). One who asked for a call is told by an
operator, in person: a `decline` task; so is one whose copy has not arrived yet (the task waits
for it in `pending`).
"""
from sqlalchemy import select

from services.notifier import mail, once
from services.notifier.acknowledging import send_held
from services.notifier.handovers import Mailing
from services.notifier.orm import consultations, inbox
from services.notifier.sending import Mailer
from services.notifier.tasks import decline_order, lock_consultations, place_orders
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.settings import Settings

CONSUMER = "notifier.rejected"
KIND = "rejection"


async def decline(deliveries: list[Delivery[ev.EligibilityRejected]], sessions: Database, mailer: Mailer,
                  settings: Settings) -> None:
    """Write to each consultant of the batch who asked for e-mail, or give an operator the task.
    Raises when a mail did not leave, after recording the others."""
    latest = {d.event.consultation_id: d.event for d in deliveries}
    await send_held(sessions, mailer, settings, list(latest))  # a receipt waiting for a booking goes first
    async with once.exclusive(sessions, KIND, list(latest)) as session:
        async with session.begin():
            ids = await lock_consultations(session, list(latest))  # a copy arriving now waits for us
            copies = {row.consultation_id: row for row in (await session.execute(
                select(consultations).where(consultations.c.consultation_id.in_(ids)))).all()}
            by_task = [d for d in deliveries if not _writes_to(copies.get(d.event.consultation_id))]
            fresh = await first_deliveries(session, inbox, CONSUMER, by_task)
            await place_orders(session, [decline_order(d.event) for d in fresh])
            sending = await once.to_send(session, KIND, [copies[cid] for cid in latest if _writes_to(copies.get(cid))],
                                         settings.smtp_deferrals_before_task)
        mailings = [Mailing(copy, mail.rejection(copy, mail.Desk.of(settings)),
                            [d for d in deliveries if d.event.consultation_id == copy.consultation_id])
                    for copy in sending]
        if mailings:
            await once.send(session, mailings, KIND, CONSUMER, mailer)


def _writes_to(copy) -> bool:
    """By e-mail only for who asked for it: a consultant who asked for a call hears it from a person."""
    return copy is not None and copy.contact_method == "email" and bool(copy.email)
