"""The console's consumers: each task the notifier issues joins the operators' list; why
eligibility asks for a review is kept for the operator who decides it; intake's answers to
phone submissions are kept for the operator on the call; each e-mail the notifier sent joins the
consultation's history.
Its handlers are given the service's Database."""
from services.console.emails_sent import keep_emails
from services.console.phone_answers import keep_answers
from services.console.reviews import keep_reviews
from services.console.tasks import record_tasks
from shared import events as ev
from shared.db import Database
from shared.messaging import Delivery, Subscriptions

subscriptions = Subscriptions("console")


@subscriptions.on(ev.TaskIssued)
async def task_issued(deliveries: list[Delivery[ev.TaskIssued]], deps: Database) -> None:
    await record_tasks(deliveries, deps)


@subscriptions.on(ev.EligibilityReviewRequested)
async def review_requested(deliveries: list[Delivery[ev.EligibilityReviewRequested]], deps: Database) -> None:
    await keep_reviews(deliveries, deps)


@subscriptions.on(ev.ConsultationSubmissionAccepted)
async def submission_accepted(deliveries: list[Delivery[ev.ConsultationSubmissionAccepted]], deps: Database) -> None:
    await keep_answers(deliveries, deps)


@subscriptions.on(ev.ConsultationSubmissionRefused)
async def submission_refused(deliveries: list[Delivery[ev.ConsultationSubmissionRefused]], deps: Database) -> None:
    await keep_answers(deliveries, deps)


@subscriptions.on(ev.EmailSent)
async def email_sent(deliveries: list[Delivery[ev.EmailSent]], deps: Database) -> None:
    await keep_emails(deliveries, deps)
