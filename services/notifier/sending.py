"""How e-mail leaves the desk: SMTP through aiosmtplib. Tests replace the Mailer with a fake."""
import socket
from datetime import datetime, timezone
from email.message import EmailMessage
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
    async def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    def __init__(self, settings: Settings):
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.timeout_s = settings.smtp_timeout_s
        # once, not per mail: aiosmtplib would otherwise look it up in a thread for every send
        self.local_hostname = socket.getfqdn()

    async def send(self, message: EmailMessage) -> None:
        if "Date" not in message:
            message["Date"] = format_datetime(datetime.now(timezone.utc))
        try:
            await aiosmtplib.send(message, hostname=self.host, port=self.port, timeout=self.timeout_s,
                                 local_hostname=self.local_hostname)
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPRecipientsRefused) as error:
            # `from None`: the SMTP error text can name the recipient's address
            raise MailNotSent(f"not delivered to the SMTP server: {type(error).__name__}") from None
        except aiosmtplib.SMTPResponseException as error:
            raise MailNotSent(f"the SMTP server refused the mail: {error.code}") from None
