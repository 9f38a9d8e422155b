"""The desk as real processes (tests/support.py's DeskProcesses), made fit for faults.

Why a subclass: a service with two workers (PAYHARA_WORKERS) is a uvicorn supervisor and its
worker processes; `kill -9` of the supervisor alone would leave the workers running, orphaned
and still consuming. So a hard kill here takes the whole process tree, as the death of a
container would. And the desk's ports are below the kernel's client range, like the servers'
(chaos/servers.py): a service restarted under load must find its port free.
"""
import os
import signal
import subprocess
import time
from pathlib import Path

from chaos.servers import low_free_port
from shared.settings import Settings
from shared.topology import SERVICES
from tests.support import DeskProcesses

WORKERS = '{"intake": 2, "notifier": 2}'  # as `make bench` and tests/e2e deploy the desk on two cores
STOP_GRACE_S = 20.0  # the consumers take up to 10 s to finish a batch in hand, uvicorn a little more


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (children of children included)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            parents.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ChaosDesk(DeskProcesses):
    def __init__(self, settings: Settings, workdir: Path):
        super().__init__(settings, workdir, PAYHARA_SLOT_CAPACITY="50", PAYHARA_WORKERS=WORKERS)
        self.ports = {service: low_free_port() for service in SERVICES}
        self.smtp_port = low_free_port()
        self.env.update({f"PAYHARA_{s.upper()}_PORT": str(p) for s, p in self.ports.items()},
                        PAYHARA_SMTP_PORT=str(self.smtp_port))
        self.stragglers: set[int] = set()  # every worker pid seen, to be sure none outlives the run
        self.problems: list[str] = []  # what the desk did wrong on the way (did not stop in time ...)

    def tree(self, name: str) -> list[int]:
        process = self.processes[name]
        pids = [process.pid, *descendants(process.pid)] if process.poll() is None else []
        self.stragglers.update(pids[1:])
        return pids

    def kill_hard(self, name: str) -> None:
        """kill -9 of the service: its supervisor and every worker at once."""
        _kill(self.tree(name))
        self.processes[name].wait(timeout=10)

    def restart(self, name: str) -> None:
        self.start(name)
        self.wait_ready(name, timeout=90)

    def terminate_services(self) -> None:
        """SIGTERM to every service at once (as an orchestrator stopping the desk would), then wait
        for each to exit by itself; one that does not within STOP_GRACE_S is noted and killed."""
        for service in SERVICES:
            self.tree(service)
            self.processes[service].terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for service in SERVICES:
            try:
                self.processes[service].wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.problems.append(f"{service} did not exit within {STOP_GRACE_S:.0f} s of SIGTERM")
                self.kill_hard(service)

    def start_services(self) -> None:
        for service in SERVICES:
            self.start(service)
        for service in SERVICES:
            self.wait_ready(service, timeout=90)

    def close(self) -> None:
        """Stop everything it started: SIGTERM to all at once, one shared grace period, then
        SIGKILL of whatever is left, workers included (checked to be ours)."""
        running = {name: p for name, p in self.processes.items() if p.poll() is None}
        for name, process in running.items():
            self.tree(name)
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for name, process in running.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.problems.append(f"{name} did not exit within {STOP_GRACE_S:.0f} s of SIGTERM at the end")
                process.kill()
                process.wait(timeout=10)
        _kill([pid for pid in self.stragglers if self._ours(pid)])

    def _ours(self, pid: int) -> bool:
        """A pid can be reused: ours only if its environment names this desk's mail directory."""
        try:
            return f"PAYHARA_MAIL_DIR={self.mail_dir}\0".encode() in Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
