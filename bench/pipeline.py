"""Pipeline benchmark: consultations over HTTP into intake at a fixed rate, until the console
lists a task for each, with every service a real process; compared with the raw broker and
database measured in the same run on this machine.

    make bench                                   # 2000 consultations at 100/s
    .venv/bin/python bench/pipeline.py --count 200 --rate 50

Uses its own database (`payhara_bench`, recreated) beside PAYHARA_DATABASE_URL and the vhost of
PAYHARA_AMQP_URL (its desk queues are reset). Any PAYHARA_* variable in the environment reaches
the services (PAYHARA_PREFETCH, PAYHARA_RELAY_BATCH, PAYHARA_DB_POOL_SIZE ...) for experiments.
"""
import argparse
import asyncio
import math
import os
import pwd
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

import raw  # noqa: E402
from shared.db import libpq_dsn  # noqa: E402
from tests.support import OPERATOR, DeskProcesses, prepare_desk, seed, submission  # noqa: E402

BENCH_DATABASE = "payhara_bench"
POLL_S = 0.5
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
# Below uvicorn's 5 s keep-alive: a connection the server is closing is never reused for a POST.
KEEPALIVE_S = 2.0


def percentile(values: list[float], p: float) -> float:
    """Nearest rank; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def cpu_snapshot(desk: DeskProcesses) -> dict[int, tuple[str, float]]:
    """pid -> (group, user+system CPU seconds so far) for the desk's processes, the PostgreSQL and
    RabbitMQ servers (by owner, read afresh each time: backends come and go) and this client."""
    groups = {p.pid: name for name, p in desk.processes.items()} | {os.getpid(): "bench"}
    owners = {u.pw_uid: u.pw_name for u in pwd.getpwall() if u.pw_name in ("postgres", "rabbitmq")}
    snapshot = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            # a service's worker processes (PAYHARA_WORKERS) count for the service
            group = groups.get(int(proc.name)) or groups.get(int(fields[1])) or owners.get(proc.stat().st_uid)
        except (OSError, IndexError):
            continue  # gone meanwhile
        if group:
            snapshot[int(proc.name)] = (group, (int(fields[11]) + int(fields[12])) / CLOCK_TICK)  # utime, stime
    return snapshot


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    used: dict[str, float] = {}
    for pid, (group, seconds) in after.items():
        used[group] = used.get(group, 0.0) + seconds - before.get(pid, (group, 0.0))[1]
    return used


async def submit_all(intake_url: str, t0: float, count: int, rate: float, concurrency: int, sent: dict,
                     errors: list) -> None:
    """Open loop: consultation i leaves at t0 + i/rate whatever the answers before it (at most
    `concurrency` in flight: past that, `send lag` grows and shows that intake fell behind)."""
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=KEEPALIVE_S)
    async with aiohttp.ClientSession(intake_url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as client:
        async def one(i: int, due: float) -> None:
            async with gate:
                at = time.time()
                try:
                    async with client.post("/api/v1/consultations", json=submission(i)) as response:
                        if response.status != 202:
                            errors.append(str(response.status))
                            return
                        sent[(await response.json())["receipt_no"]] = (at, at - due)
                except (aiohttp.ClientError, TimeoutError) as error:
                    errors.append(type(error).__name__)

        pending = []
        for i in range(count):
            delay = t0 + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(i, t0 + i / rate)))
        await asyncio.gather(*pending)


async def poll_tasks(dsn: str, submitted: asyncio.Event, sent: dict, seen: dict, issued: dict,
                     deadline: float) -> bool:
    """Every POLL_S, the console's tasks for the receipts not seen yet, straight from its table
    (listing every open task over HTTP twice a second would load the desk more than operators
    ever do); True once all is submitted and each receipt has one. The console's own HTTP list
    is checked once at the end (console_lists_all)."""
    connection = await asyncpg.connect(dsn)
    try:
        while time.time() < deadline:
            now = time.time()
            waiting = [r for r in list(sent) if r not in seen]
            for row in await connection.fetch(
                    "SELECT receipt_no, issued_at FROM console.tasks WHERE receipt_no = ANY($1::text[])", waiting):
                seen[row["receipt_no"]] = now
                issued[row["receipt_no"]] = row["issued_at"].timestamp()
            if submitted.is_set() and sent.keys() <= seen.keys():
                return True
            await asyncio.sleep(POLL_S)
    finally:
        await connection.close()
    return False


async def console_lists_all(console_url: str, receipts) -> bool:
    """What an operator sees: the console's task list names every receipt of the run."""
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as console:
        response = await console.post("/login", data={"login": OPERATOR[0], "password": OPERATOR[1]})
        if response.status_code not in (200, 303):
            raise RuntimeError(f"console log-in failed: {response.status_code}")
        answer = await console.get("/api/v1/tasks", params={"fields": "reference"})  # no personal data
        listed = {task["receipt_no"] for task in answer.raise_for_status().json()}
    return set(receipts) <= listed


async def bench(args) -> int:
    url = make_url(os.environ.get("PAYHARA_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/payhara"))
    os.environ["PAYHARA_DATABASE_URL"] = url.set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    from shared.settings import Settings

    settings = Settings()
    print(f"bench: {args.count} consultations at {args.rate:g}/s; database {BENCH_DATABASE}", flush=True)
    await prepare_desk(settings)
    publish_rate, consume_rate = await raw.broker_rates(settings.amqp_url)
    print(f"raw broker: publish+confirm {publish_rate:.0f} msg/s, consume+ack {consume_rate:.0f} msg/s", flush=True)
    commit_rate = await raw.database_rate(libpq_dsn(settings.database_url))
    print(f"raw db: {commit_rate:.0f} commits/s (8 connections)", flush=True)
    await seed(settings)

    workdir = Path(tempfile.mkdtemp(prefix="payhara-bench-"))
    desk = DeskProcesses(settings, workdir,
                         PAYHARA_SLOT_CAPACITY=os.environ.get("PAYHARA_SLOT_CAPACITY", "100000"),
                         PAYHARA_LOG_LEVEL=os.environ.get("PAYHARA_LOG_LEVEL", "WARNING"))
    sent, errors, seen, issued = {}, [], {}, {}
    try:
        desk.start_all()  # blocking on purpose: an interrupt cannot leave a half-started desk behind
        cpu_before, t0 = cpu_snapshot(desk), time.time()
        deadline = t0 + args.timeout
        submitted = asyncio.Event()
        poller = asyncio.create_task(poll_tasks(libpq_dsn(settings.database_url), submitted, sent, seen, issued,
                                                deadline))
        try:
            await asyncio.wait_for(submit_all(desk.url("intake"), t0, args.count, args.rate, args.concurrency,
                                              sent, errors), args.timeout)
        except TimeoutError:
            errors.append("submission timed out")
        submitted.set()
        print(f"submitted in {time.time() - t0:.1f} s: {len(sent)} accepted, {len(errors)} errors "
              f"{dict(Counter(errors)) if errors else ''}", flush=True)
        complete = await poller
        cpu, wall = cpu_used(cpu_before, cpu_snapshot(desk)), time.time() - t0
        listed = complete and await console_lists_all(desk.url("console"), sent)
    finally:
        desk.stop_all()

    done = [r for r in sent if r in issued]
    latency = [(issued[r] - sent[r][0]) * 1000 for r in done]
    seen_latency = [(seen[r] - sent[r][0]) * 1000 for r in done]
    first = min((at for at, _ in sent.values()), default=t0)
    throughput = len(done) / (max(issued[r] for r in done) - first) if done else 0.0
    p50, p95, p99 = (percentile(latency, p) for p in (50, 95, 99))
    print(f"\n  accepted {len(sent)}, refused or failed {len(errors)}, tasked {len(done)}, lost {len(sent) - len(done)}")
    rows = [("latency POST -> task issued, ms", latency), ("latency POST -> seen by poller, ms", seen_latency),
            ("client send lag behind schedule, ms", [lag * 1000 for _, lag in sent.values()])]
    print(f"  {'':<38}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}")
    for name, values in rows:
        print(f"  {name:<38}" + "".join(f"{percentile(values, p):>8.0f}" for p in (50, 95, 99, 100)))
    print(f"  throughput {throughput:.1f} consultations/s; raw broker consume+ack {consume_rate:.0f} msg/s")
    print(f"\nCPU from the first POST to the last task seen ({wall:.1f} s): % of one core, ms per consultation "
          "(postgres and rabbitmq: the whole servers, other clients included)")
    for name, seconds in sorted(cpu.items(), key=lambda c: -c[1]):
        print(f"  {name:<12}{100 * seconds / wall:>6.0f}%{1000 * seconds / max(len(done), 1):>8.1f} ms")
    ok = complete and listed and not errors and len(done) == args.count
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:  # the services' logs stay for the post-mortem
        why = "timeout" if not complete else "not in the console's list" if not listed else "lost or refused"
        print(f"FAILED: {why}; logs in {desk.logs}")
    print(f"pipeline: {throughput:.1f} consultations/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms; "
          f"raw broker {publish_rate:.0f} msg/s, raw db {commit_rate:.0f} commits/s")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="consultations to submit")
    parser.add_argument("--rate", type=float, default=100.0, help="consultations per second (open loop)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds from the first POST to give up")
    parser.add_argument("--concurrency", type=int, default=200, help="POSTs in flight at most")
    args = parser.parse_args()
    if args.count < 1 or args.rate <= 0 or args.timeout <= 0:
        parser.error("--count, --rate and --timeout must be positive")
    try:
        return asyncio.run(bench(args))
    except KeyboardInterrupt:  # the desk was stopped on the way out (finally in bench)
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
