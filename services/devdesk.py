"""`payhara up`: the whole desk on one machine, each service its own process, for development.

It migrates, loads the demo registry and a dev operator, then keeps every service and the SMTP
sink running (restarting one that dies) until Ctrl-C or SIGTERM.
"""
import asyncio
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path

from shared.settings import Settings, get_settings
from shared.topology import SERVICES

log = logging.getLogger("payhara.desk")

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"
RESTART_AFTER_S = 1.0
STOP_GRACE_S = 10.0


def child_commands() -> dict[str, list[str]]:
    commands = {name: [sys.executable, "-m", "services.cli", "run", name] for name in SERVICES}
    commands["smtp-sink"] = [sys.executable, "-m", "services.cli", "smtp-sink"]
    return commands


async def load_demo(settings: Settings) -> None:
    """The demo member registry and the dev supervisor; both can be loaded again safely."""
    from services.console.accounts import add_dev_operator
    from services.eligibility.registry import import_files
    from shared.db import make_engine, make_sessions

    code = await import_files(str(DEMO_DIR / "members.csv"), str(DEMO_DIR / "institutions.csv"))
    if code:
        raise RuntimeError(f"demo registry import failed (exit code {code})")
    engine = make_engine(settings, pool_size=1)
    try:
        await add_dev_operator(make_sessions(engine), settings.env)  # refused outside dev mode
    finally:
        await engine.dispose()


def _spawn(command: list[str]) -> subprocess.Popen:
    # its own process group: Ctrl-C reaches only the supervisor, so each child gets one SIGTERM
    return subprocess.Popen(command, process_group=0)


def supervise(commands: dict[str, list[str]], stop: threading.Event) -> None:
    """Run every command; restart one that exits; on `stop`, terminate them all."""
    children = {name: _spawn(command) for name, command in commands.items()}
    try:
        while not stop.wait(0.5):
            for name, child in children.items():
                if child.poll() is None:
                    continue
                log.warning("%s exited with code %s; restarting in %.0f s", name, child.returncode, RESTART_AFTER_S)
                if stop.wait(RESTART_AFTER_S):
                    break
                children[name] = _spawn(commands[name])
    finally:
        _stop_all(children)


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    for name, child in children.items():
        try:
            child.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", name, STOP_GRACE_S)
            child.kill()
            child.wait()


def run_desk(demo: bool = True) -> int:
    from services.subscriptions import SUBSCRIPTIONS
    from shared import migrate
    from shared.logs import configure

    settings = get_settings()
    configure("desk")
    if settings.env != "dev":
        print(
            "payhara up は開発用です（デモデータと開発用オペレーターを登録します）。PAYHARA_ENV=dev のときだけ動きます。\n"
            f"payhara up is for development only (it loads demo data and a dev operator); PAYHARA_ENV is {settings.env!r}.",
            file=sys.stderr,
        )
        return 2
    try:
        migrate.upgrade()
        asyncio.run(migrate.declare_topology(SUBSCRIPTIONS))
        if demo:
            asyncio.run(load_demo(settings))
    except OSError as unreachable:  # connection refused, unknown host: the usual first-run problem
        print(
            f"PostgreSQL または RabbitMQ に接続できません / cannot reach PostgreSQL or RabbitMQ: {unreachable}\n"
            "PAYHARA_DATABASE_URL と PAYHARA_AMQP_URL を確認してください / check PAYHARA_DATABASE_URL and PAYHARA_AMQP_URL.",
            file=sys.stderr,
        )
        return 1

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal went away
        signal.signal(sig, lambda *_: stop.set())
    base = f"http://{settings.http_host}"
    login = "  (login: dev / dev-password)" if demo else ""
    print(
        f"相談フォーム / web form:        {base}:{settings.intake_port}/\n"
        f"オペレーター画面 / console:     {base}:{settings.console_port}/{login}\n"
        f"受信メール / mail directory:    {Path(settings.mail_dir).resolve()}  "
        f"(SMTP {settings.smtp_host}:{settings.smtp_port})\n"
        "Ctrl-C で停止 / Ctrl-C to stop",
        flush=True,
    )
    supervise(child_commands(), stop)
    log.info("desk stopped")
    return 0
