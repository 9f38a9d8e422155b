"""A development SMTP sink: every message it receives becomes one .eml file in PAYHARA_MAIL_DIR.

Nothing is relayed. Files are named `<UTC timestamp>-<sha1(Message-ID)[:12]>.eml`, so the same
e-mail delivered twice (a repeat after a crash) shows up as two files with the same suffix.
"""
import asyncio
import email
import email.policy
import hashlib
import logging
import os
import signal
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from aiosmtpd.smtp import SMTP

log = logging.getLogger("payhara.smtp_sink")


def mail_file_name(raw: bytes, now: datetime | None = None) -> str:
    # the header block only, without the modern policy's header objects: this runs for every mail
    headers = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    message_id = BytesHeaderParser(policy=email.policy.compat32).parsebytes(headers).get("Message-ID")
    digest = hashlib.sha1(("".join(str(message_id).split()) if message_id else "").encode() or raw).hexdigest()
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{digest[:12]}.eml"


def keep(mail_dir: Path, raw: bytes) -> Path:
    """Write atomically: readers list only *.eml, and the file appears whole by rename. No fsync:
    a development sink; what it took survives its own crash (the page cache), not the machine's."""
    path = mail_dir / mail_file_name(raw)
    tmp = mail_dir / f".{path.name}.tmp"
    tmp.write_bytes(raw)
    os.replace(tmp, path)
    return path


class MailDirHandler:
    """aiosmtpd handler: accept every recipient, keep the message as it came in."""

    def __init__(self, mail_dir: str | Path):
        self.mail_dir = Path(mail_dir)
        self.mail_dir.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope) -> str:
        path = keep(self.mail_dir, envelope.original_content)  # a few kB: no thread needed
        log.info("kept %s", path.name)  # the file name only: no addresses, no subject
        return "250 Message accepted for delivery"


async def start_sink(mail_dir: str | Path, host: str, port: int) -> asyncio.AbstractServer:
    """Listen on host:port (0 = any free port) in the running loop; tests use this directly."""
    loop = asyncio.get_running_loop()
    handler = MailDirHandler(mail_dir)
    return await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, hostname="payhara-smtp-sink", loop=loop), host, port
    )


def read_mailbox(mail_dir: str | Path) -> list[EmailMessage]:
    """Every kept message, oldest first (file names start with the UTC time of receipt).
    Files keep the wire form (CRLF); lines are read back as "\\n", as the sender wrote them."""
    folder = Path(mail_dir)
    if not folder.is_dir():
        return []
    return [
        email.message_from_bytes(path.read_bytes().replace(b"\r\n", b"\n"), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def serve() -> int:
    """`payhara smtp-sink`: run until SIGTERM or SIGINT."""
    from shared.logs import configure
    from shared.settings import get_settings

    settings = get_settings()
    configure("smtp-sink")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs senders and recipients at INFO

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await start_sink(settings.mail_dir, settings.smtp_host, settings.smtp_port)
        log.info("listening on %s:%s, keeping mail in %s", settings.smtp_host, settings.smtp_port,
                 Path(settings.mail_dir).resolve())
        async with server:
            await stop.wait()
        log.info("stopped")

    asyncio.run(main())
    return 0
