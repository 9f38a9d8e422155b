"""A private PostgreSQL and a private RabbitMQ node, each in a temporary directory, for faults.

Why private: an experiment stops the database or the broker for a minute. The machine's shared
servers (127.0.0.1:5432, rabbit@localhost on 5672) serve everybody else's tests, so they are
never stopped, restarted or otherwise touched here.
Why ports below 32768: the kernel hands out 32768-60999 to outgoing connections, and a server
restarted while dozens of services reconnect would find its old port taken by one of them.
"""
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# the newest PostgreSQL Debian installed (15 on this machine)
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path("/usr/lib/postgresql/15/bin"))
RABBITMQ_SERVER = "/usr/sbin/rabbitmq-server"  # as root it runs the node as `rabbitmq` (its cookie)
RABBITMQCTL = "/usr/sbin/rabbitmqctl"
NODE = "payhara-chaos@localhost"
LOW_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def low_free_port() -> int:
    """A free 127.0.0.1 port below the client range, never the same twice in one run."""
    for port in random.sample(LOW_PORTS, 400):
        if port in _handed_out:
            continue
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port between 20000 and 32000 on 127.0.0.1")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _owned_dir(path: Path, user: str) -> Path:
    path.mkdir(mode=0o700)
    shutil.chown(path, user, user)
    return path


def _run(command: list[str], env: dict | None = None, timeout: float = 120) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd="/tmp")
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
    return done.stdout


class PrivatePostgres:
    """initdb into `base/pg`, trust auth, 127.0.0.1 only, on its own port; run as `postgres`."""

    def __init__(self, base: Path):
        self.home = _owned_dir(base / "pg", "postgres")
        self.data = self.home / "data"
        self.port = low_free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/payhara_chaos"

    def _as_postgres(self, tool: str, *args: str, timeout: float = 120) -> str:
        return _run(["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args], timeout=timeout)

    def create(self) -> None:
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                          "--locale=C", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:  # the dir is postgres's, root may write
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.home}'\nmax_connections = 300\n"
                       # nothing here survives the run and the server is only ever stopped cleanly
                       "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n")
        self.start()

    def start(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-l", str(self.home / "postgres.log"), "-w", "-t", "60",
                          "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        """Stop it whatever state it is in (a postmaster.pid left means it may run)."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            self.stop("immediate")
        except Exception:
            _kill_pid_from(pid_file, must_mention=str(self.data))


class PrivateRabbit:
    """A RabbitMQ node `payhara-chaos@localhost` with every file in `base/rabbit`, no plugins
    (the management plugin's port would clash with the machine's broker), the machine's epmd."""

    def __init__(self, base: Path):
        self.home = _owned_dir(base / "rabbit", "rabbitmq")
        self.port, self.dist_port = low_free_port(), low_free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None
        files = {
            # instead of /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node
            "rabbitmq-env.conf": f"NODENAME={NODE}\nERL_EPMD_ADDRESS=127.0.0.1\n",
            "rabbitmq.conf": f"listeners.tcp.1 = 127.0.0.1:{self.port}\ndisk_free_limit.absolute = 50MB\n"
                             "log.console = false\nlog.file.level = info\n",
            "enabled_plugins": "[].\n",
        }
        for name, text in files.items():
            (self.home / name).write_text(text)
        for path in self.home.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self.env = dict(
            os.environ, RABBITMQ_NODENAME=NODE, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONF_ENV_FILE=str(self.home / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.home / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.home / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.home / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.home / "mnesia"), RABBITMQ_LOG_BASE=str(self.home / "log"),
            RABBITMQ_PID_FILE=str(self.home / "node.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )

    def ctl(self, *args: str, timeout: float = 90) -> str:
        """rabbitmqctl against this node only: -n always given, never the machine's node."""
        return _run([RABBITMQCTL, "-n", NODE, *args], env=self.env, timeout=timeout)

    def start(self) -> None:
        """Start the node (the same data directory each time: durable quorum queues survive)."""
        with open(self.home / "server.out", "ab") as log:
            self.process = subprocess.Popen([RABBITMQ_SERVER], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, cwd="/tmp")
        deadline = time.monotonic() + 120
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private RabbitMQ did not start; see {self.home / 'log'}")
            time.sleep(0.5)
        self.ctl("await_startup", "--timeout", "60")

    def stop(self) -> None:
        self.ctl("stop", str(self.home / "node.pid"))  # with the pid file it returns once the VM is gone
        if self.process is not None:
            self.process.wait(timeout=60)
            self.process = None

    def destroy(self) -> None:
        """Stop the node whatever state it is in; a node that will not stop is killed by its pid."""
        try:
            if self.process is not None:
                return self.stop()
        except Exception:
            pass
        _kill_pid_from(self.home / "node.pid", must_mention=NODE)
        if self.process is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None


def _kill_pid_from(pid_file: Path, must_mention: str = "") -> None:
    """SIGKILL the pid in `pid_file`, if that process is still ours (its command line mentions
    `must_mention`): a pid file can outlive its process, and the pid be reused."""
    try:
        pid = int(pid_file.read_text().split()[0])
        if must_mention.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


class PrivateServers:
    """Both servers in one temporary directory; `close()` stops them and deletes it, whatever
    happened before (chaos/run.py calls it from a finally, which Ctrl-C, SIGTERM and SIGHUP
    reach too, and from atexit as a last resort)."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="payhara-chaos-"))
        self.base.chmod(0o755)  # postgres and rabbitmq must reach their own subdirectories
        try:
            self.postgres = PrivatePostgres(self.base)
            self.rabbit = PrivateRabbit(self.base)
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise
        self.closed = False

    def start(self) -> None:
        self.postgres.create()
        self.rabbit.start()

    def ensure_up(self) -> None:
        """Both servers running, e.g. after an experiment that failed in the middle of an outage."""
        if not port_open(self.postgres.port):
            self.postgres.start()
        if self.rabbit.process is None or not port_open(self.rabbit.port):
            self.rabbit.destroy()
            self.rabbit.start()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for server in (self.rabbit, self.postgres):
            try:
                server.destroy()
            except Exception as error:  # go on: the other one and the directory still need it
                print(f"chaos: could not stop {type(server).__name__}: {error}", flush=True)
        shutil.rmtree(self.base, ignore_errors=True)
