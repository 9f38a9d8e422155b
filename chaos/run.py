"""`make chaos` / `python -m chaos.run [--only NAME[,NAME]] [--scale 0.2]`: the fault suite.

Starts a private PostgreSQL and RabbitMQ (chaos/servers.py), runs each experiment on a fresh
desk against them, prints one row per experiment and, as its very last line,

    chaos: N experiments, accepted A, lost L, duplicated effects D, dead-lettered good events G, duplicate e-mails E (crash window)

It exits 1 when L, D or G is not zero, or when an experiment could not be carried out or its
poison did not end in the DLQs; E is reported, not failed on (guarantee 4 allows a repeat in the
crash window and asks for it to be detected). Whatever happens (an error, Ctrl-C, SIGTERM), the
private servers are stopped and their directory deleted, and every desk process is stopped.
"""
import argparse
import asyncio
import atexit
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from chaos.experiments import BY_NAME, EXPERIMENTS, Outcome, run
from chaos.servers import PrivateServers

COLUMNS = ("experiment", "accepted", "refused", "failed", "1 task", "lost", "dup", "mails/mailed",
           "dup mails", "DLQ", "DLQ good", "poison", "s")


def row(o: Outcome) -> tuple:
    poison = f"{o.dlq_poison}/{o.poison_expected}" if o.poison_expected else "-"
    return (o.name, o.accepted, o.load.refused, o.load.failures(), o.one_task, o.lost, o.duplicated,
            f"{o.mails}/{o.mailed}", o.duplicate_mails, o.dlq_depth, o.dlq_good, poison, f"{o.seconds:.0f}")


def print_table(outcomes: list[Outcome]) -> None:
    rows = [COLUMNS] + [tuple(str(v) for v in row(o)) for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    print()
    for r in rows:
        print("  ".join(v.ljust(w) if i in (0, 3) else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    print("  refused: 503 from intake; failed: other answers or no answer; 1 task: accepted consultations with "
          "exactly one call-or-email task in the console;\n  lost: accepted, no task after the settle period; "
          "dup: consultations with more than one booking or call/email task; mails/mailed: acknowledgement "
          "e-mails in\n  the SMTP sink / consultations they were for; dup mails: consultations e-mailed more than "
          "once; DLQ: messages in all DLQs, good: not injected poison;\n  poison: poison copies in the DLQs / "
          "expected (one per queue a poison message reaches)\n")
    for o in outcomes:
        details = list(o.notes)
        if o.error:
            details.insert(0, f"ERROR {o.error}")
        details += [f"duplicated in {where}: {len(ids)}" for where, ids in o.duplicated_where.items()]
        details += [f"good event dead-lettered ×{n} in {why}" for why, n in o.good_reasons.items()]
        if details:
            print(f"  {o.name}: " + "; ".join(details))


def verdict(outcomes: list[Outcome]) -> tuple[str, bool]:
    accepted, lost = sum(o.accepted for o in outcomes), sum(o.lost for o in outcomes)
    dup, good = sum(o.duplicated for o in outcomes), sum(o.dlq_good for o in outcomes)
    mails = sum(o.duplicate_mails for o in outcomes)
    broken = any(o.error or o.dlq_poison < o.poison_expected for o in outcomes)
    line = (f"chaos: {len(outcomes)} experiments, accepted {accepted}, lost {lost}, duplicated effects {dup}, "
            f"dead-lettered good events {good}, duplicate e-mails {mails} (crash window)")
    return line, not (lost or dup or good or broken)


async def suite(names: list[str], scale: float, logs: Path, servers: PrivateServers, desks: list) -> list[Outcome]:
    from shared.settings import Settings

    settings = Settings(env="test", database_url=servers.postgres.url, amqp_url=servers.rabbit.url,
                        slot_capacity=50)
    outcomes = []
    for name in names:
        print(f"chaos: {name}: {BY_NAME[name].what} (scale {scale:g})", flush=True)
        outcome = await run(BY_NAME[name], servers, settings, scale, logs, desks)
        print(f"chaos: {name}: accepted {outcome.accepted}, lost {outcome.lost}, duplicated {outcome.duplicated}, "
              f"good dead letters {outcome.dlq_good}{'; ' + outcome.error if outcome.error else ''} "
              f"({outcome.seconds:.0f} s)", flush=True)
        outcomes.append(outcome)
    return outcomes


def _stop_on_signal(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through every finally: desks, servers, directories


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated experiments: " + ", ".join(BY_NAME))
    parser.add_argument("--scale", type=float, default=1.0, help="shrink counts and outages (0.2: a quick run)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else list(BY_NAME)
    if unknown := [n for n in names if n not in BY_NAME]:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    if not 0 < args.scale <= 5:
        parser.error("--scale must be in (0, 5]")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)
    logs = Path(tempfile.mkdtemp(prefix="payhara-chaos-logs-"))
    servers, desks, outcomes, stopped = None, [], [], 0
    try:
        servers = PrivateServers()
        atexit.register(servers.close)  # a last resort; close() does nothing the second time
        print(f"chaos: private PostgreSQL on 127.0.0.1:{servers.postgres.port}, RabbitMQ {servers.rabbit.port} "
              f"(dist {servers.rabbit.dist_port}) in {servers.base}; desk logs in {logs}", flush=True)
        servers.start()
        outcomes = asyncio.run(suite(names, args.scale, logs, servers, desks))
    except (KeyboardInterrupt, SystemExit) as stop:
        stopped = stop.code if isinstance(stop, SystemExit) and isinstance(stop.code, int) else 130
        print("chaos: interrupted; stopping the desk and the private servers", file=sys.stderr, flush=True)
    finally:
        for desk in desks:
            desk.close()
        if servers is not None:
            servers.close()
    print_table(outcomes)
    line, ok = verdict(outcomes)
    ok = ok and len(outcomes) == len(names)
    if ok:
        shutil.rmtree(logs, ignore_errors=True)
    else:
        print(f"  the desk's logs are kept in {logs}")
    print(line, flush=True)
    return stopped or (0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main())
