"""The `payhara` command: run a service, run the whole desk, migrate, import the registry,
list and replay dead letters, show the desk calendar, set and show the roster."""
import argparse
import asyncio
import sys

from shared.topology import SERVICES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payhara", description="payhara-desk consultation desk")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one service (with its outbox relay)")
    run.add_argument("service", choices=SERVICES)
    run.add_argument("--port", type=int)
    run.add_argument("--workers", type=int, help="processes of this service on one port (default: PAYHARA_WORKERS)")

    commands.add_parser("migrate", help="migrate every service's schema and declare the broker topology")

    up = commands.add_parser("up", help="run the whole desk locally, each service its own process")
    up.add_argument("--no-demo", action="store_true", help="do not load the demo registry and dev operator")

    members = commands.add_parser("members", help="the member registry")
    members_commands = members.add_subparsers(dest="members_command", required=True)
    load = members_commands.add_parser("import", help="replace the registry with these CSV files")
    load.add_argument("--members", required=True)
    load.add_argument("--institutions", required=True)

    operators = commands.add_parser("operators", help="operator accounts of the console")
    operators_commands = operators.add_subparsers(dest="operators_command", required=True)
    add = operators_commands.add_parser(
        "add", help="create or reset an operator account",
        description="Create an operator, or reset the password and name (and the role, if given) of an "
                    "existing one, ending its sessions. The password is asked twice, or read from stdin.")
    add.add_argument("login")
    add.add_argument("--name", required=True)
    add.add_argument("--role", metavar="operator|supervisor",
                     help="what the account may do (default: operator for a new account; "
                          "an existing one keeps its role)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    commands.add_parser("smtp-sink", help="a development SMTP server that keeps mail in PAYHARA_MAIL_DIR")
    commands.add_parser("asyncapi", help="print the AsyncAPI document of the desk's events (YAML)")

    dlq = commands.add_parser("dlq", help="dead-letter queues: what is waiting, and bringing it back")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_commands.add_parser(
        "list", help="every DLQ with its count, oldest dead letter and reasons (messages stay in place)")
    listing.add_argument("--json", action="store_true", help="one JSON document, for machines")
    replay = dlq_commands.add_parser(
        "replay", help="move dead letters back to their consumer queue",
        description="Move dead letters back to their consumer queue, each acked from the DLQ only after "
                    "the broker confirmed its copy. Harmless for an event that was already applied: "
                    "every consumer's inbox skips an event_id it has handled.")
    replay.add_argument("queue", help="a consumer queue (e.g. console.task.issued.v1) or its .dlq")
    replay.add_argument("--limit", type=_positive, help="at most this many (default: all there when it starts)")

    calendar = commands.add_parser(
        "calendar", help="the desk calendar: a month's closed days, or whether one day is open",
        usage="payhara calendar YYYY-MM | payhara calendar check YYYY-MM-DD",
        description="`payhara calendar 2026-09` lists the month's closed days with their reasons; "
                    "`payhara calendar check 2026-09-22` says whether the desk is open that day and why.")
    # one positional that is a month or the word `check`, so both forms parse; the command
    # itself checks the rest, to answer bad input in Japanese and English
    calendar.add_argument("month_or_check", nargs="?", metavar="YYYY-MM|check")
    calendar.add_argument("day", nargs="?", metavar="YYYY-MM-DD")

    roster = commands.add_parser("roster", help="callbacks per slot: a day's own capacity, a month's roster")
    roster_commands = roster.add_subparsers(dest="roster_command", required=True)
    set_day = roster_commands.add_parser(
        "set", help="give a day its own capacity per slot (its booked slots keep what they have)",
        description="`payhara roster set 2026-12-02 --capacity 2`: each slot of that day takes 2 callbacks. "
                    "Refused (exit 2) on a closed or past day, or below what a slot of the day has booked.")
    set_day.add_argument("day", metavar="YYYY-MM-DD")
    set_day.add_argument("--capacity", type=_not_negative, required=True, help="callbacks per slot (0: none that day)")
    set_day.add_argument("--by", default=None, help="who sets it (default: the login name)")
    show = roster_commands.add_parser("show", help="each open day of a month: capacity per slot, who set it, seats")
    show.add_argument("month", metavar="YYYY-MM")

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


def _run(args) -> int:
    import uvicorn

    from shared.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        f"services.{args.service}.main:create_app", factory=True, host=settings.http_host,
        port=args.port or settings.port_of(args.service), log_level="warning", lifespan="on",
        workers=args.workers or settings.workers_of(args.service),
    )
    return 0


def _migrate(args) -> int:
    from services.subscriptions import SUBSCRIPTIONS
    from shared import migrate

    migrate.upgrade()
    asyncio.run(migrate.declare_topology(SUBSCRIPTIONS))
    print("migrated:", ", ".join(SERVICES))
    return 0


def _members(args) -> int:
    from services.eligibility.registry import import_files

    return asyncio.run(import_files(args.members, args.institutions))


def _operators(args) -> int:
    from services.console.accounts import add_operator_command

    return asyncio.run(add_operator_command(args.login, args.name, args.password_stdin, args.role))


def _up(args) -> int:
    from services.devdesk import run_desk

    return run_desk(demo=not args.no_demo)


def _smtp_sink(args) -> int:
    from services.devsmtp import serve

    return serve()


def _asyncapi(args) -> int:
    from services.subscriptions import SUBSCRIPTIONS
    from shared.asyncapi import to_yaml
    from shared.settings import get_settings

    print(to_yaml(SUBSCRIPTIONS, get_settings().delivery_limit))
    return 0


def _calendar(args) -> int:
    from services.calendar_report import run

    return run(args.month_or_check, args.day)


def _roster(args) -> int:
    import getpass

    from services.scheduler import roster

    if args.roster_command == "set":
        return roster.run_set(args.day, args.capacity, args.by or getpass.getuser())
    return roster.run_show(args.month)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _not_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"0以上の整数で指定してください / must be a whole number, 0 or more (got {value!r})")
    return number


def _dlq(args) -> int:
    import json

    from aio_pika.exceptions import AMQPConnectionError, ChannelNotFoundEntity

    from services import dead_letters
    from shared.settings import get_settings

    amqp_url = get_settings().amqp_url
    try:
        if args.dlq_command == "list":
            found = asyncio.run(dead_letters.list_dead_letters(amqp_url))
            if args.json:
                print(json.dumps({"dead_letter_queues": [q.as_json() for q in found]}, ensure_ascii=False, indent=2))
            else:
                print(_dead_letter_report(found))
            return 0
        replayed = asyncio.run(dead_letters.replay(amqp_url, args.queue, args.limit))
    except dead_letters.UnknownQueue as error:
        print(f"payhara dlq: {error}", file=sys.stderr)
        return 2
    except dead_letters.ReplayFailed as error:
        print(f"payhara dlq: {error}", file=sys.stderr)
        return 1
    except ChannelNotFoundEntity as error:
        print(f"payhara dlq: {error}; is the topology declared (`payhara migrate`)?", file=sys.stderr)
        return 1
    except (AMQPConnectionError, OSError) as error:
        print(f"payhara dlq: cannot reach RabbitMQ at {_where(amqp_url)} ({type(error).__name__})", file=sys.stderr)
        return 1
    print(f"replayed {replayed.moved} of {replayed.waiting} from {replayed.queue} to {replayed.consumer_queue}")
    return 0


def _dead_letter_report(found) -> str:
    from shared.calendar import JST

    lines, empty = [], []
    for dlq in found:
        if not dlq.count:
            empty.append(dlq.queue)
            continue
        oldest = dlq.oldest.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST") if dlq.oldest else "unknown"
        lines.append(f"{dlq.queue}: {dlq.count} dead letter{'s' if dlq.count != 1 else ''}, oldest {oldest}")
        lines.extend(f"  {n:>6}  {reason}" for reason, n in dlq.reasons.items())
        if dlq.capped:
            lines.append(f"  (reasons and oldest from the first {dlq.peeked} of {dlq.count} only)")
    if not lines:
        lines.append("no dead letters")
    if empty:
        lines.append(f"empty ({len(empty)}): {', '.join(empty)}")
    return "\n".join(lines)


def _where(amqp_url: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(amqp_url)  # never the password
    return f"{parsed.hostname}:{parsed.port or 5672}{parsed.path or '/'}"


COMMANDS = {
    "run": _run, "migrate": _migrate, "members": _members, "operators": _operators,
    "up": _up, "smtp-sink": _smtp_sink, "asyncapi": _asyncapi, "dlq": _dlq, "calendar": _calendar,
    "roster": _roster,
}

if __name__ == "__main__":
    sys.exit(main())
