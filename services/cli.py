"""The `payhara` command: run a service, run the whole desk, migrate, import the registry."""
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
    add = operators_commands.add_parser("add", help="create or reset an operator account")
    add.add_argument("login")
    add.add_argument("--name", required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    commands.add_parser("smtp-sink", help="a development SMTP server that keeps mail in PAYHARA_MAIL_DIR")
    commands.add_parser("asyncapi", help="print the AsyncAPI document of the desk's events (YAML)")

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

    return asyncio.run(add_operator_command(args.login, args.name, args.password_stdin))


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


COMMANDS = {
    "run": _run, "migrate": _migrate, "members": _members, "operators": _operators,
    "up": _up, "smtp-sink": _smtp_sink, "asyncapi": _asyncapi,
}

if __name__ == "__main__":
    sys.exit(main())
