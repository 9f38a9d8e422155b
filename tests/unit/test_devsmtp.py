"""The development SMTP sink keeps each received message whole, named by time and Message-ID."""
import hashlib
import re
from email.message import EmailMessage

import aiosmtplib
import pytest

from services.devsmtp import mail_file_name, read_mailbox, start_sink


@pytest.fixture
async def sink(tmp_path):
    server = await start_sink(tmp_path / "mail", "127.0.0.1", 0)
    yield tmp_path / "mail", server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def notice(message_id: str, body: str = "受付番号 A-0001 のご相談を受け付けました。\n") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "payhara-desk@example.invalid"
    message["To"] = "consultant@example.com"
    message["Subject"] = "ご相談を受け付けました"
    message["Message-ID"] = message_id
    message.set_content(body)
    return message


async def test_a_sent_message_is_kept_whole_and_named_by_its_message_id(sink):
    mail_dir, port = sink
    body = "受付番号 A-0001 のご相談を受け付けました。\n" * 3000  # large enough to span many writes
    await aiosmtplib.send(notice("<receipt-A-0001.received@payhara>", body), hostname="127.0.0.1", port=port)

    [kept] = read_mailbox(mail_dir)
    assert kept["Message-ID"] == "<receipt-A-0001.received@payhara>"
    assert kept["Subject"] == "ご相談を受け付けました"
    assert kept.get_content() == body
    [path] = list(mail_dir.iterdir())  # no temporary file left behind
    digest = hashlib.sha1(b"<receipt-A-0001.received@payhara>").hexdigest()[:12]
    assert re.fullmatch(rf"\d{{8}}T\d{{6}}\.\d{{6}}Z-{digest}\.eml", path.name)


async def test_a_repeated_e_mail_shows_up_as_two_files_with_the_same_suffix(sink):
    mail_dir, port = sink
    for message_id in ("<same@payhara>", "<other@payhara>", "<same@payhara>"):
        await aiosmtplib.send(notice(message_id), hostname="127.0.0.1", port=port)

    assert [m["Message-ID"] for m in read_mailbox(mail_dir)] == ["<same@payhara>", "<other@payhara>", "<same@payhara>"]
    suffixes = sorted(p.name.split("-", 1)[1] for p in mail_dir.glob("*.eml"))
    assert len(suffixes) == 3 and len(set(suffixes)) == 2


def test_read_mailbox_skips_files_still_being_written_and_a_missing_folder(tmp_path):
    assert read_mailbox(tmp_path / "nowhere") == []
    (tmp_path / ".20261124T000000.000000Z-abc.eml.tmp").write_bytes(b"Subject: half")
    assert read_mailbox(tmp_path) == []


def test_a_message_without_message_id_is_named_by_its_content():
    first = mail_file_name(b"Subject: a\r\n\r\nbody one\r\n")
    second = mail_file_name(b"Subject: a\r\n\r\nbody two\r\n")
    assert first.split("-", 1)[1] != second.split("-", 1)[1]
