"""How e-mail leaves the desk: SMTP through aiosmtplib (STARTTLS and log-in when the settings ask
for them). Tests replace the Mailer with a fake, or run a real aiosmtpd server.

What an SMTP answer means for the mail, and for the consumer that sent it:
- `SmtpUnreachable`, `SmtpBusy`, `SmtpRefusesDesk` (no connection or a timeout before the mail
  was handed over; a 4xx for the session such as 421, or naming the server rather than the
  mailbox; a 5xx to the desk itself: its log-in, STARTTLS, sender): the mail was not taken and the
  server or its settings are the problem, so they are `DependencyDown`: the consumer holds the
  batch and retries with backoff, without spending the delivery limit, until the server answers.
  No consultant's mail is ever given up for the desk's own server.
- `MailBounced` (a 5xx for the recipient or the content, an address that cannot be sent to): the
  mail will never go; it is recorded as failed and an operator reaches the consultant another way.
- `RecipientDeferred` (a 4xx naming the mailbox, such as a full one): this mail only; tried again
  through the broker a few times, never pausing everyone's mail, then as a bounce (once.py).
- anything else (a timeout or a dropped connection during the transaction): the server may have
  taken the mail, so its hand-over stays on record and the retry reports a possible duplicate.
"""
import asyncio
import logging
import re
import socket
import ssl
import time
from datetime import datetime, timezone
from email.message import Message
from email.utils import format_datetime
from typing import Protocol

import aiosmtplib

from shared.failures import DependencyDown
from shared.settings import Settings

log = logging.getLogger("payhara.notifier")
LOG_IN_REFUSED = (530, 534, 535, 538)  # authentication required, too weak, failed, encryption required
ENHANCED = re.compile(r"^\s*[245]\.(\d{1,3})\.\d{1,3}\b")


class MailNotSent(Exception):
    """The mail certainly did not leave."""


class MailRefused(MailNotSent):
    """The server answered for this mail itself (`code`, None for an address it cannot take)."""

    def __init__(self, why: str, code: int | None = None):
        super().__init__(why)
        self.code = code


class MailBounced(MailRefused):
    """Refused for good: sending it again would not help."""


class RecipientDeferred(MailRefused):
    """A 4xx for this recipient only (mailbox full): the server is fine, try this mail later."""


class SmtpUnreachable(MailNotSent, DependencyDown):
    """No connection to the SMTP server (refused, reset, timed out): nothing was handed over."""


class SmtpBusy(MailNotSent, DependencyDown):
    """The SMTP server answered 4xx: it did not take the mail, and asks to be tried again later."""


class SmtpRefusesDesk(MailNotSent, DependencyDown):
    """The server refuses the desk itself (log-in, STARTTLS, certificate, sender): a setting to fix."""


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
    """Sends a batch over a few SMTP connections, each reused for many mails, and kept a while
    for the next batch."""

    def __init__(self, settings: Settings):
        self.host, self.port = settings.smtp_host, settings.smtp_port
        self.connections = settings.smtp_connections
        self.keep_idle_s = settings.smtp_keep_idle_s
        # sessions set up and idle, with when each was last used: the next batch takes them
        # rather than paying the connection, greeting, EHLO (STARTTLS, log-in) and QUIT again
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        # every connect, STARTTLS, log-in and command waits at most smtp_timeout_s for its answer;
        # local_hostname once, not per mail: aiosmtplib would look it up in a thread every time
        self._options = dict(
            hostname=self.host, port=self.port, timeout=settings.smtp_timeout_s, local_hostname=socket.getfqdn(),
            start_tls=settings.smtp_starttls, validate_certs=settings.smtp_tls_verify,
            cert_bundle=settings.smtp_tls_ca_file, username=settings.smtp_username or None,
            password=password if settings.smtp_username else None)

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
        except when the session could not be set up: the rest of the lane is not tried."""
        outcomes: list[Exception | None] = []
        smtp: aiosmtplib.SMTP | None = None
        try:
            for message in messages:
                try:
                    smtp = smtp or await self._session()
                except MailNotSent as not_connected:
                    outcomes.extend([not_connected] * (len(messages) - len(outcomes)))
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
        self._keep(smtp)
        return outcomes

    async def _session(self) -> aiosmtplib.SMTP:
        """An idle session that still answers (a NOOP: the server may have closed it meanwhile,
        and a mail must never be handed over on a dead one), or a new one."""
        while self._idle:
            smtp, since = self._idle.pop()
            if time.monotonic() - since < self.keep_idle_s and smtp.is_connected:
                try:
                    await smtp.noop()
                    return smtp
                except Exception:
                    pass
            await _close(smtp)
        return await self._connect()

    def _keep(self, smtp: aiosmtplib.SMTP | None) -> None:
        if smtp is None or not smtp.is_connected:
            return
        if self.keep_idle_s > 0 and len(self._idle) < self.connections:
            self._idle.append((smtp, time.monotonic()))
        else:
            smtp.close()

    async def close_idle(self, older_than_s: float = 0, polite: bool = False) -> None:
        """Close the sessions idle for `older_than_s` or more (all of them by default)."""
        now = time.monotonic()
        stale = [(smtp, since) for smtp, since in self._idle if now - since >= older_than_s]
        self._idle = [kept for kept in self._idle if kept not in stale]
        await asyncio.gather(*(_close(smtp, polite) for smtp, _ in stale), return_exceptions=True)

    async def keep_sessions(self) -> None:
        """For the service's lifetime: QUIT the sessions idle too long; at the stop, close them
        all (no QUIT: a stop does not wait for the server)."""
        try:
            while True:
                await asyncio.sleep(max(self.keep_idle_s, 1))
                await self.close_idle(self.keep_idle_s, polite=True)
        finally:
            await self.close_idle()

    async def _connect(self) -> aiosmtplib.SMTP:
        """A session ready for mail (greeting, EHLO, STARTTLS, log-in), before any hand-over: a
        failure here certainly sent nothing."""
        smtp = aiosmtplib.SMTP(**self._options)
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
        except Exception as error:
            smtp.close()
            raise self._setup_failure(error) from None
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _setup_failure(self, error: Exception) -> MailNotSent:
        where = f"SMTP server {self.host}:{self.port}"
        code = getattr(error, "code", None)
        if isinstance(code, int) and 400 <= code < 500:
            return SmtpBusy(f"{where} answered {code} to the desk: try again later")
        refused = isinstance(error, aiosmtplib.SMTPException) and not isinstance(error, (ConnectionError, TimeoutError))
        if isinstance(error, (ssl.SSLError, ssl.CertificateError)) or refused:
            why = f"{type(error).__name__} {code or ''}".strip()
            log.error("%s refuses the desk (%s): check the PAYHARA_SMTP_* settings; mail is held meanwhile", where, why)
            return SmtpRefusesDesk(f"{where} refuses the desk: {why}")
        return SmtpUnreachable(f"{where} unreachable: {type(error).__name__}")


def _outcome(error: Exception) -> Exception:
    """What the server's answer means for this mail. Codes and type names only, `from None`
    where it is raised: the SMTP error text can name the recipient's address."""
    if isinstance(error, (ValueError, aiosmtplib.SMTPNotSupported)):  # checked before MAIL FROM
        return MailBounced("the address cannot be sent to")
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refusal = max(error.recipients, key=lambda r: r.code, default=None)
        code, text = (refusal.code, refusal.message) if refusal else (550, "")
        if code in LOG_IN_REFUSED:
            return SmtpRefusesDesk(f"the SMTP server wants the desk to log in: {code}")
        if code >= 500:
            return MailBounced(f"the SMTP server refused the recipient: {code}", code)
        if _names_the_mailbox(code, text):  # the server is fine: pausing every mail for it would be wrong
            return RecipientDeferred(f"the SMTP server deferred the recipient: {code}", code)
        return SmtpBusy(f"the SMTP server answered {code} for a recipient: try again later")
    if not isinstance(error, aiosmtplib.SMTPResponseException) or not 400 <= error.code < 600:
        return error  # no answer: the server may have taken it
    if error.code < 500:
        return SmtpBusy(f"the SMTP server answered {error.code}: try again later")
    if isinstance(error, aiosmtplib.SMTPDataError) and error.code not in LOG_IN_REFUSED:
        return MailBounced(f"the SMTP server refused the mail: {error.code}", error.code)
    return SmtpRefusesDesk(f"the SMTP server refused the desk's sender: {error.code}")


def _names_the_mailbox(code: int, text: str) -> bool:
    """A 4xx about this recipient (X.1.x address, X.2.x mailbox; 450 without an enhanced code),
    rather than the server (421, X.3.x system, X.4.x network, X.7.x policy such as greylisting)."""
    if code == 421:
        return False
    enhanced = ENHANCED.match(text or "")
    return enhanced.group(1) in ("1", "2") if enhanced else code == 450


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
