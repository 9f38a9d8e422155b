"""How e-mail leaves the desk: SMTP through aiosmtplib. Tests replace the Mailer with a fake.

What an SMTP failure means for the mail, and for the consumer that sent it:
- `SmtpUnreachable`, `SmtpBusy` (no connection, or a 4xx "try later" for the whole session, such
  as 421): the mail was not taken and the server is the problem, so they are `DependencyDown`:
  the consumer pauses and retries without spending the delivery limit.
- `MailNotSent` (a 5xx refusal, or a 4xx for one recipient such as a full mailbox): not taken, and
  the mail is the problem: an ordinary failure, retried a few times, then in the DLQ with the
  reason, from where `payhara dlq replay` can send it again later.
- anything else (a timeout or a dropped connection during DATA): the server may have taken the
  mail, so its hand-over stays on record and the retry reports a possible duplicate.
"""
import asyncio
import socket
from datetime import datetime, timezone
from email.message import Message
from email.utils import format_datetime
from typing import Protocol

import aiosmtplib

from shared.failures import DependencyDown
from shared.settings import Settings


class MailNotSent(Exception):
    """The mail certainly did not leave: the server refused it for good (5xx)."""


class SmtpUnreachable(MailNotSent, DependencyDown):
    """No connection to the SMTP server (refused, timed out): nothing was handed over."""


class SmtpBusy(MailNotSent, DependencyDown):
    """The SMTP server answered 4xx: it did not take the mail, and asks to be tried again later."""


class Handovers(Protocol):
    """Where a mailer says what happens to each mail, as it happens (handovers.HandoverRecord)."""

    async def handing_over(self, message: Message) -> None:
        """Just before the mail goes to the server; returns once that is on record, and raises
        (the mail must then not be sent) when it cannot be recorded."""

    def returned(self, message: Message, failure: Exception | None) -> None:
        """As soon as the server answered for a mail handed over: None (taken), MailNotSent
        (certainly not taken), another exception (unknown)."""


class Mailer(Protocol):
    async def send_all(self, messages: list[Message], handovers: Handovers) -> list[Exception | None]:
        """One outcome per message (None, MailNotSent or another exception, as in `returned`);
        `handovers` hears of each mail actually handed to the server, before and after."""


class SmtpMailer:
    """Sends a batch over a few SMTP connections, each reused for many mails."""

    def __init__(self, settings: Settings):
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.timeout_s = settings.smtp_timeout_s
        self.connections = settings.smtp_connections
        # once, not per mail: aiosmtplib would otherwise look it up in a thread for every send
        self.local_hostname = socket.getfqdn()

    async def send_all(self, messages: list[Message], handovers: Handovers) -> list[Exception | None]:
        """Up to `smtp_connections` connections at once, each taking every n-th mail: a mail
        costs several round trips, so one connection alone would leave the batch waiting."""
        for message in messages:
            if "Date" not in message:
                message["Date"] = format_datetime(datetime.now(timezone.utc))
        lanes = max(1, min(self.connections, len(messages)))
        # every lane ends before we return (a lane stops at its next hand-over once the record
        # fails): none may go on sending, or recording, on the caller's connection afterwards
        results = await asyncio.gather(*(self._send_in_turn(messages[lane::lanes], handovers)
                                         for lane in range(lanes)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        outcomes: list[Exception | None] = [None] * len(messages)
        for lane, lane_outcomes in enumerate(results):
            outcomes[lane::lanes] = lane_outcomes
        return outcomes

    async def _send_in_turn(self, messages: list[Message], handovers: Handovers) -> list[Exception | None]:
        """One connection, one mail after another; after any error the next mail gets a new one,
        except when the server cannot be reached: the rest of the lane is not tried."""
        outcomes: list[Exception | None] = []
        smtp: aiosmtplib.SMTP | None = None
        try:
            for message in messages:
                try:
                    smtp = smtp or await self._connect()
                except SmtpUnreachable as unreachable:
                    outcomes.extend([unreachable] * (len(messages) - len(outcomes)))
                    break
                await handovers.handing_over(message)
                try:
                    await smtp.send_message(message)
                    outcome = None
                except Exception as error:
                    outcome = _outcome(error)
                    await _close(smtp)
                    smtp = None
                handovers.returned(message, outcome)
                outcomes.append(outcome)
        except BaseException:
            await _close(smtp)  # no QUIT on the way out of a failure or a stop: it could wait long
            raise
        await _close(smtp, polite=True)
        return outcomes

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout_s,
                               local_hostname=self.local_hostname)
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            raise SmtpUnreachable(f"SMTP server {self.host}:{self.port} unreachable: {type(error).__name__}") from None
        return smtp


def _outcome(error: Exception) -> Exception:
    # codes and type names only, `from None`: the SMTP error text can name the recipient's address
    code = _refusal_code(error)
    if code is None or not 400 <= code < 600:
        return error  # no answer: the server may have taken it
    if 400 <= code < 500 and not isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return SmtpBusy(f"the SMTP server answered {code}: try again later")
    if 400 <= code < 500:  # this recipient only (mailbox full, greylisted): the server is fine,
        # so pausing every acknowledgement for it would be wrong; retried and counted instead
        return MailNotSent(f"the SMTP server deferred the recipient: {code}")
    return MailNotSent(f"the SMTP server refused the mail: {code}")


def _refusal_code(error: Exception) -> int | None:
    """The server's answer when it refused the mail; a permanent refusal of any recipient wins."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return max((refusal.code for refusal in error.recipients), default=550)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code
    return None


async def _close(smtp: aiosmtplib.SMTP | None, polite: bool = False) -> None:
    if smtp is None or not smtp.is_connected:
        return
    try:
        if polite:
            await smtp.quit()
        else:
            smtp.close()
    except Exception:
        smtp.close()
