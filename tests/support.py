"""What tests and benchmarks share: a fresh database and broker topology, the demo registry and
an operator, and the desk as real processes (each service by `payhara run`, on free ports)."""
import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from services.devdesk import child_commands
from shared.topology import SERVICES

ROOT = Path(__file__).resolve().parents[1]

OPERATOR = ("e2e-operator", "correct horse battery staple")
# active members of demo/, with their names as a consultant types them (the reading in hiragana):
# each one is confirmed and booked
ACTIVE_MEMBERS = {"M0001": ("見本 太郎", "みほん たろう"), "M0002": ("架空 花子", "かくう はなこ"),
                  "M0003": ("仮名 一郎", "かめい いちろう"), "M0004": ("試験 次郎", "しけん じろう"),
                  "M0006": ("模擬 良子", "もぎ りょうこ")}


def submission(i: int) -> dict:
    """The i-th consultation of a run: an active member, by e-mail when i is odd, else by phone."""
    member_no = list(ACTIVE_MEMBERS)[i % len(ACTIVE_MEMBERS)]
    name, reading = ACTIVE_MEMBERS[member_no]
    return {
        "consultant": {"name": name, "name_kana": reading, "role": "member", "member_no": member_no},
        "contact": {"method": "email" if i % 2 else "phone", "phone": "0312345678", "email": f"c{i}@example.com"},
        "category": "in_person",
        "summary": "受付で大声で威圧され、診療の指示を拒まれました。",
        "consent": True,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DeskProcesses:
    def __init__(self, settings, workdir: Path, **overrides: str):
        self.ports = {service: free_port() for service in SERVICES}
        self.smtp_port = free_port()
        self.mail_dir = workdir / "mail"
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = dict(
            os.environ,
            PAYHARA_ENV="test",
            PAYHARA_DATABASE_URL=settings.database_url,
            PAYHARA_AMQP_URL=settings.amqp_url,
            PAYHARA_SMTP_HOST="127.0.0.1",
            PAYHARA_SMTP_PORT=str(self.smtp_port),
            PAYHARA_MAIL_DIR=str(self.mail_dir),
            PAYHARA_RELAY_POLL_S="1",
            **{f"PAYHARA_{s.upper()}_PORT": str(p) for s, p in self.ports.items()},
        )
        self.env.update(overrides)
        self.processes: dict[str, subprocess.Popen] = {}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, name: str) -> None:
        """Start one child as `payhara up` would: a service name, or "smtp-sink"."""
        log = open(self.logs / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            child_commands()[name], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )

    def start_all(self) -> None:
        self.start("smtp-sink")
        for service in SERVICES:
            self.start(service)
        for service in SERVICES:
            self.wait_ready(service)

    def wait_ready(self, service: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[service].poll() is not None:
                raise RuntimeError(f"{service} exited; see {self.logs / (service + '.log')}")
            try:
                if httpx.get(self.url(service) + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{service} not ready after {timeout}s; see {self.logs / (service + '.log')}")

    def kill_hard(self, name: str) -> None:
        """kill -9: no shutdown, no acks, in-flight deliveries go back to the queue."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def recreate_database(database_url: str) -> None:
    import asyncpg

    from shared.db import libpq_dsn

    dsn = libpq_dsn(database_url)
    name = urlparse(dsn).path.lstrip("/")
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()


async def reset_broker(settings) -> None:
    """Delete this desk's queues and exchanges in the test vhost, then declare them afresh."""
    import aio_pika

    from services.subscriptions import SUBSCRIPTIONS
    from shared.topology import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, dead_letter_queue_name, declare_all, queue_name

    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for service, subscribed in SUBSCRIPTIONS.items():
            for event in subscribed:
                name = queue_name(service, event)
                await channel.queue_delete(name)
                await channel.queue_delete(dead_letter_queue_name(name))
        await channel.exchange_delete(EVENTS_EXCHANGE)
        await channel.exchange_delete(DEAD_LETTER_EXCHANGE)
        await declare_all(channel, SUBSCRIPTIONS, settings.delivery_limit)


async def prepare_desk(settings) -> None:
    """A fresh database with every service migrated, and a fresh broker topology."""
    from shared import migrate

    await recreate_database(settings.database_url)
    await asyncio.to_thread(migrate.upgrade, SERVICES, settings.database_url)
    await reset_broker(settings)


async def seed(settings) -> None:
    """The demo registry for eligibility and one operator for the console."""
    from services.console.accounts import add_operator
    from services.eligibility.registry import replace_registry
    from services.eligibility.registry_csv import parse_institutions, parse_members
    from shared.db import make_engine, make_sessions

    engine = make_engine(settings)
    sessions = make_sessions(engine)
    members = parse_members((ROOT / "demo" / "members.csv").read_text(encoding="utf-8-sig"))
    institutions = parse_institutions((ROOT / "demo" / "institutions.csv").read_text(encoding="utf-8-sig"))
    await replace_registry(sessions, members, institutions)
    await add_operator(sessions, OPERATOR[0], "試験用オペレーター", OPERATOR[1])
    await engine.dispose()


async def publish_envelopes(channel, envelopes, routing_key: str) -> None:
    """Publish `envelopes` to the desk's exchange as the relay does (persistent, confirmed,
    mandatory): the same envelope twice is a redelivery of one event."""
    import aio_pika

    from shared.topology import EVENTS_EXCHANGE

    exchange = await channel.get_exchange(EVENTS_EXCHANGE)
    for envelope in envelopes:
        message = aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.event_id),
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await exchange.publish(message, routing_key=routing_key, mandatory=True)
