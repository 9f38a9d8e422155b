"""How e-mail leaves the desk: SMTP through aiosmtplib. Tests replace the Mailer with a fake."""
import asyncio
import socket
from datetime import datetime, timezone
from email.message import Message
from email.utils import format_datetime
from typing import Protocol

import aiosmtplib

from shared.settings import Settings


class MailNotSent(Exception):
    """The mail certainly did not leave: no connection, or the server refused it.

    Any other error (a timeout or a dropped connection during DATA) leaves it unknown whether
    the server took the mail, so the retry must treat it as a possible duplicate.
    """


class Mailer(Protocol):
    async def send_all(self, messages: list[Message]) -> list[Exception | None]:
        """One outcome per message: None (the server took it), MailNotSent (it certainly did
        not), or another exception (unknown: the server may have taken it)."""


class SmtpMailer:
    """Sends a batch over a few SMTP connections, each reused for many mails."""

    def __init__(self, settings: Settings):
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.timeout_s = settings.smtp_timeout_s
        self.connections = settings.smtp_connections
        # once, not per mail: aiosmtplib would otherwise look it up in a thread for every send
        self.local_hostname = socket.getfqdn()

    async def send_all(self, messages: list[Message]) -> list[Exception | None]:
        """Up to `smtp_connections` connections at once, each taking every n-th mail: a mail
        costs several round trips, so one connection alone would leave the batch waiting."""
        for message in messages:
            if "Date" not in message:
                message["Date"] = format_datetime(datetime.now(timezone.utc))
        lanes = max(1, min(self.connections, len(messages)))
        results = await asyncio.gather(*(self._send_in_turn(messages[lane::lanes]) for lane in range(lanes)))
        outcomes: list[Exception | None] = [None] * len(messages)
        for lane, lane_outcomes in enumerate(results):
            outcomes[lane::lanes] = lane_outcomes
        return outcomes

    async def _send_in_turn(self, messages: list[Message]) -> list[Exception | None]:
        """One connection, one mail after another; after any error the next mail gets a new one."""
        outcomes: list[Exception | None] = []
        smtp: aiosmtplib.SMTP | None = None
        try:
            for message in messages:
                try:
                    smtp = smtp or await self._connect()
                    await smtp.send_message(message)
                    outcomes.append(None)
                except Exception as error:
                    outcomes.append(_outcome(error))
                    await _close(smtp)
                    smtp = None
        finally:
            await _close(smtp, polite=True)
        return outcomes

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout_s,
                               local_hostname=self.local_hostname)
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            raise aiosmtplib.SMTPConnectError(type(error).__name__) from None
        return smtp


def _outcome(error: Exception) -> Exception:
    # `from None` / type names only: the SMTP error text can name the recipient's address
    if isinstance(error, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPRecipientsRefused)):
        return MailNotSent(f"not delivered to the SMTP server: {type(error).__name__}")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return MailNotSent(f"the SMTP server refused the mail: {error.code}")
    return error


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
