"""Intake benchmark: intake alone against a bare endpoint doing one INSERT, measured in the same run.

Intake runs as deployed (`payhara run intake`, PAYHARA_WORKERS processes, its outbox relay
publishing to the broker, rate limit off). Beside it runs a bare FastAPI app on the same uvicorn
(same worker count, uvloop and httptools) whose one endpoint parses the JSON body and INSERTs a
similar row with SQLAlchemy Core on asyncpg, as intake does, and nothing else: no validation,
receipt number, promise, outbox row or relay. Both get the same open-loop client (aiohttp) with
the same consultations (tests.support.submission), one app at a time: a warm-up, a steady rate
(latency), then a burst offered far above what either takes (the maximum: accepted POSTs per
second while POSTs wait). Latency counts from each POST's scheduled time, so a client held back by
a slow server does not hide the wait (no coordinated omission).

    make bench                                   # also runs this
    .venv/bin/python bench/intake.py --rate 100 --seconds 20 --max-rate 2000 --max-seconds 5

Uses its own database (`payhara_bench`, recreated, as bench/pipeline.py) and the vhost of
PAYHARA_AMQP_URL (its desk queues are reset); the bare table lives in its own schema, dropped at
the end, and the events intake published are removed with a reset of the desk queues.
"""
import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, insert  # noqa: E402

BENCH_DATABASE = "payhara_bench"
BARE_SCHEMA = "bench_bare"
KEEPALIVE_S = 2.0  # below uvicorn's 5 s keep-alive, as bench/pipeline.py
DRAIN_TIMEOUT_S = 120.0

bare_metadata = MetaData(schema=BARE_SCHEMA)
bare_consultations = Table(  # the columns of intake.consultations a submission fills
    "consultations", bare_metadata,
    Column("id", Uuid, primary_key=True),
    Column("receipt_no", Text, nullable=False, unique=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("consultant_name", Text, nullable=False),
    Column("consultant_name_kana", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("member_no", Text),
    Column("contact_method", Text, nullable=False),
    Column("phone", Text),
    Column("email", Text),
    Column("category", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("status", Text, nullable=False),
)


def bare_app():
    """The baseline (uvicorn factory): parse the JSON body, one INSERT in a transaction, 202."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from shared.db import make_engine
    from shared.settings import Settings

    engine = make_engine(Settings())  # intake's engine: same pool, timeouts and driver

    @asynccontextmanager
    async def lifespan(app):
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/api/v1/consultations", status_code=202)
    async def submit(request: Request):
        try:
            payload = json.loads(await request.body())
            consultant, contact = payload["consultant"], payload["contact"]
            consultation_id = uuid.uuid4()
            row = dict(id=consultation_id, receipt_no=consultation_id.hex, received_at=datetime.now(timezone.utc),
                       consultant_name=consultant["name"], consultant_name_kana=consultant["name_kana"],
                       role=consultant["role"], member_no=consultant.get("member_no"),
                       contact_method=contact["method"], phone=contact.get("phone"), email=contact.get("email"),
                       category=payload["category"], summary=payload["summary"], status="received")
        except (ValueError, KeyError, TypeError):
            return JSONResponse(status_code=422, content={"code": "invalid_submission"})
        async with engine.begin() as conn:
            await conn.execute(insert(bare_consultations), row)
        return JSONResponse(status_code=202, content={"consultation_id": str(consultation_id),
                                                      "receipt_no": row["receipt_no"]})

    @app.get("/readyz")
    async def readyz():
        return {"ready": True}

    return app


def serve_bare(port: int, workers: int) -> int:
    import uvicorn

    # as `payhara run` starts intake (services/cli.py): loop and http "auto" are uvloop and httptools
    uvicorn.run("bench.intake:bare_app", factory=True, host="127.0.0.1", port=port, log_level="warning",
                lifespan="on", workers=workers)
    return 0


def percentile(values: list[float], p: float) -> float:
    """Nearest rank; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def drive(url: str, rate: float, seconds: float, concurrency: int, offset: int) -> dict:
    """Open loop: POST i leaves at t0 + i/rate whatever the answers before it, at most
    `concurrency` in flight; latency from its scheduled time to its answer."""
    import aiohttp

    from tests.support import submission

    count = max(1, round(rate * seconds))
    latencies, errors, lag = [], Counter(), []
    gate = asyncio.Semaphore(concurrency)
    bodies = [json.dumps(submission(offset + i), ensure_ascii=False).encode() for i in range(count)]
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=KEEPALIVE_S)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=30),
                                     headers={"Content-Type": "application/json"}) as client:
        async def one(i: int, due: float) -> None:
            async with gate:
                lag.append(time.perf_counter() - due)
                try:
                    async with client.post("/api/v1/consultations", data=bodies[i]) as response:
                        await response.read()
                        if response.status == 202:
                            latencies.append((time.perf_counter() - due) * 1000)
                        else:
                            errors[str(response.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as error:
                    errors[type(error).__name__] += 1

        t0 = time.perf_counter() + 0.05
        pending = []
        for i in range(count):
            due = t0 + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - t0
    return {"offered": rate, "count": count, "accepted": len(latencies), "errors": errors,
            "throughput": len(latencies) / elapsed, "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99), "max": percentile(latencies, 100),
            "lag_max": 1000 * max(lag, default=0.0)}


async def outbox_drained(dsn: str) -> float:
    """Seconds until intake's relay has published every outbox row (its work for the phase)."""
    import asyncpg

    started = time.perf_counter()
    connection = await asyncpg.connect(dsn)
    try:
        while await connection.fetchval("select count(*) from intake.outbox where sent_at is null"):
            if time.perf_counter() - started > DRAIN_TIMEOUT_S:
                raise TimeoutError(f"intake's outbox not drained after {DRAIN_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    return time.perf_counter() - started


def split(before: dict, after: dict, group: str) -> str:
    """How the group's CPU of the phase fell on its processes (uvicorn's workers share one
    listening socket: the kernel, not a balancer, decides which one accepts a connection)."""
    used = sorted((seconds - before.get(pid, (group, 0.0))[1] for pid, (g, seconds) in after.items() if g == group),
                  reverse=True)
    total = sum(used) or 1.0
    return "/".join(f"{100 * u / total:.0f}" for u in used if u / total >= 0.01)


def report(name: str, phase: dict, cpu: dict[str, float], shares: str) -> None:
    errors = sum(phase["errors"].values())
    detail = f" {dict(phase['errors'])}" if errors else ""
    own = cpu.get(name, 0.0) * 1000 / max(phase["accepted"], 1)
    pg = cpu.get("postgres", 0.0) * 1000 / max(phase["accepted"], 1)
    client = cpu.get("bench", 0.0) * 1000 / max(phase["accepted"], 1)
    print(f"  {name:<7}{phase['offered']:>7.0f}/s{phase['throughput']:>10.1f}/s{phase['p50']:>8.1f}{phase['p99']:>8.1f}"
          f"{phase['max']:>8.0f}{errors:>7}{phase['lag_max']:>9.0f}{own:>9.2f}{pg:>9.2f}{client:>9.2f}  {shares}{detail}", flush=True)


def maximum(phase: dict) -> str:
    """The burst's accepted/s; an app that kept up with it was not saturated: at least that."""
    return f"{'>=' if phase['throughput'] >= 0.97 * phase['offered'] else ''}{phase['throughput']:.0f}"


async def bench(args) -> int:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    url = make_url(os.environ.get("PAYHARA_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/payhara"))
    os.environ["PAYHARA_DATABASE_URL"] = url.set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    sys.path.insert(0, str(ROOT / "bench"))
    from pipeline import cpu_snapshot, cpu_used

    from shared.db import libpq_dsn, make_engine
    from shared.settings import Settings
    from tests.support import DeskProcesses, free_port, prepare_desk, reset_broker

    settings = Settings()
    workers = settings.workers_of("intake")
    print(f"bench intake: {workers} process(es) each; {args.rate:g}/s for {args.seconds:g} s, then "
          f"{args.max_rate:g}/s for {args.max_seconds:g} s (maximum); database {BENCH_DATABASE}", flush=True)
    await prepare_desk(settings)
    engine = make_engine(settings, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text(f"create schema {BARE_SCHEMA}"))
        await conn.run_sync(bare_metadata.create_all)

    workdir = Path(tempfile.mkdtemp(prefix="payhara-bench-intake-"))
    desk = DeskProcesses(settings, workdir, PAYHARA_INTAKE_RATE_LIMIT="0",
                         PAYHARA_LOG_LEVEL=os.environ.get("PAYHARA_LOG_LEVEL", "WARNING"))
    bare_port = free_port()
    dsn = libpq_dsn(settings.database_url)
    results: dict[tuple[str, str], dict] = {}
    ok = False
    try:
        desk.start("intake")
        with open(desk.logs / "bare.log", "ab") as log:
            desk.processes["bare"] = subprocess.Popen(  # stopped with the desk
                [sys.executable, __file__, "--serve-bare", str(bare_port), "--workers", str(workers)],
                cwd=ROOT, env=desk.env, stdout=log, stderr=subprocess.STDOUT)
        desk.ports["bare"] = bare_port
        for name in ("intake", "bare"):
            desk.wait_ready(name)
        urls = {"intake": desk.url("intake"), "bare": desk.url("bare")}
        offset = 0
        for name in urls:  # warm-up: connection pools, caches, first-call imports; not counted
            await drive(urls[name], 50, 2, args.concurrency, offset)
        await outbox_drained(dsn)
        print(f"\n  {'':<7}{'offered':>9}{'accepted':>12}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'errors':>7}"
              f"{'lag ms':>9}{'cpu ms':>9}{'pg ms':>9}{'client':>9}  cpu % by process", flush=True)
        for phase, rate, seconds in (("steady", args.rate, args.seconds), ("max", args.max_rate, args.max_seconds)):
            for name in urls:  # one app at a time, the other idle beside it
                offset += 10_000
                before = cpu_snapshot(desk)
                results[(name, phase)] = await asyncio.wait_for(
                    drive(urls[name], rate, seconds, args.concurrency, offset), seconds + 120)
                if name == "intake":  # its relay's publishing is part of its cost, not of the next phase
                    results[(name, phase)]["drain_s"] = await outbox_drained(dsn)
                after = cpu_snapshot(desk)
                report(name, results[(name, phase)], cpu_used(before, after), split(before, after, name))
                await asyncio.sleep(1)
        # the burst overloads both on purpose: a refusal there (intake answers 503 when no pooled
        # connection frees up within PAYHARA_DB_POOL_TIMEOUT_S) is a figure; at the steady rate, a failure
        ok = not any(sum(r["errors"].values()) for (_, phase), r in results.items() if phase == "steady")
    finally:
        desk.stop_all()
        async with engine.begin() as conn:
            await conn.execute(text(f"drop schema if exists {BARE_SCHEMA} cascade"))
        await engine.dispose()
        await reset_broker(settings)  # the events intake published, unconsumed here

    print("\n  per accepted POST, CPU of: the app's processes (cpu ms), the whole PostgreSQL server (pg ms), this"
          "\n  client (client); intake's include its relay until the outbox is drained"
          "\n  lag ms: the most a POST left after its scheduled time (the client held back)")
    steady_i, steady_b = results[("intake", "steady")], results[("bare", "steady")]
    max_i, max_b = results[("intake", "max")], results[("bare", "max")]
    print(f"  intake's relay finished publishing {steady_i['drain_s']:.1f} s / {max_i['drain_s']:.1f} s after the "
          "last answer (steady / max)")
    throughput, p99 = max_i["throughput"] / max_b["throughput"], steady_i["p99"] / steady_b["p99"]
    print(f"  intake / bare: maximum {throughput:.2f}; at {args.rate:g}/s p50 {steady_i['p50'] / steady_b['p50']:.2f}, "
          f"p99 {p99:.2f}")
    if not any(sum(r["errors"].values()) for r in results.values()):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"{'' if ok else 'FAILED: '}errors at {'the maximum' if ok else 'the steady rate'}; logs in {desk.logs}")
    print(f"intake: {maximum(max_i)}/s p99 {steady_i['p99']:.1f} ms; bare insert: {maximum(max_b)}/s "
          f"p99 {steady_b['p99']:.1f} ms; ratio throughput {throughput:.2f}, ratio p99 {p99:.1f} "
          f"(maximum accepted/s; p99 at {args.rate:g}/s; {workers} process(es) each)")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="steady rate, POSTs per second (open loop)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the steady phase")
    parser.add_argument("--max-rate", type=float, default=2000.0,
                        help="offered rate of the burst that finds the maximum (above what either app takes)")
    parser.add_argument("--max-seconds", type=float, default=5.0, help="length of that burst")
    parser.add_argument("--concurrency", type=int, default=200, help="POSTs in flight at most")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        return serve_bare(args.serve_bare, args.workers)
    if min(args.rate, args.seconds, args.max_rate, args.max_seconds, args.concurrency) <= 0:
        parser.error("rates, lengths and --concurrency must be positive")
    try:
        return asyncio.run(bench(args))
    except KeyboardInterrupt:  # the processes were stopped on the way out (finally in bench)
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
