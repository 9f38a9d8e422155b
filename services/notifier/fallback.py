"""Use case: the desk's calls did not reach the consultant (callback.exhausted.v1). Where the
consultation copy has an e-mail address, the consultant gets one fallback e-mail asking them to
reply or call the desk, sent once like the acknowledgement (once.py); where it has none, an
operator gets an `unreachable` task.
"""
from sqlalchemy import select

from services.notifier import mail, once
from services.notifier.handovers import Mailing
from services.notifier.orm import consultations, inbox
from services.notifier.sending import Mailer
from services.notifier.tasks import lock_consultations, place_orders, unreachable_order
from shared import events as ev
from shared.db import Database
from shared.inbox import first_deliveries
from shared.messaging import Delivery
from shared.settings import Settings

CONSUMER = "notifier.exhausted"
KIND = "callback_fallback"


async def fall_back(deliveries: list[Delivery[ev.CallbackExhausted]], sessions: Database, mailer: Mailer,
                    settings: Settings) -> None:
    """Write to each consultant of the batch, or give an operator the task. Raises when a mail did
    not leave, after recording the others."""
    latest = {d.event.consultation_id: d.event for d in deliveries}
    async with once.exclusive(sessions, KIND, list(latest)) as session:
        async with session.begin():
            ids = await lock_consultations(session, list(latest))  # a copy arriving now waits for us
            copies = {row.consultation_id: row for row in (await session.execute(
                select(consultations).where(consultations.c.consultation_id.in_(ids)))).all()}
            by_task = [d for d in deliveries if not _email_of(copies, d.event.consultation_id)]
            # no copy yet (it would be very late): the task waits for it in `pending`
            fresh = await first_deliveries(session, inbox, CONSUMER, by_task)
            await place_orders(session, [unreachable_order(d.event) for d in fresh])
            sending = await once.to_send(session, KIND, [copies[cid] for cid in latest if _email_of(copies, cid)],
                                         settings.smtp_deferrals_before_task)
        mailings = [Mailing(copy, _fallback_mail(copy, latest[copy.consultation_id], settings),
                            [d for d in deliveries if d.event.consultation_id == copy.consultation_id])
                    for copy in sending]
        if mailings:
            await once.send(session, mailings, KIND, CONSUMER, mailer)


def _email_of(copies: dict, consultation_id) -> str | None:
    copy = copies.get(consultation_id)
    return copy.email if copy is not None else None


def _fallback_mail(copy, event: ev.CallbackExhausted, settings: Settings):
    return mail.callback_fallback(copy, event.attempts, event.reason, mail.Desk.of(settings))
