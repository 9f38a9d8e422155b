"""The desk as real processes for end-to-end tests: each service started with `payhara run`,
an SMTP sink with `payhara smtp-sink`, on free ports, against the test database and vhost."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.topology import SERVICES

ROOT = Path(__file__).resolve().parents[2]


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
            **overrides,
        )
        self.processes: dict[str, subprocess.Popen] = {}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, name: str) -> None:
        command = ["smtp-sink"] if name == "smtp" else ["run", name]
        log = open(self.logs / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *command], cwd=ROOT, env=self.env,
            stdout=log, stderr=subprocess.STDOUT,
        )

    def start_all(self) -> None:
        self.start("smtp")
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
