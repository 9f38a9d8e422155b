"""docker-compose.yml agrees with the code: every service of the topology runs, through the real CLI,
on the port its health check probes, after the migration, with a health check of its own."""
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from services import cli
from shared.settings import Settings
from shared.topology import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]


def command_of(service: str) -> list[str]:
    command = COMPOSE[service]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def healthcheck_text(service: str) -> str:
    test = COMPOSE[service]["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def cli_exit_code(argv: list[str]) -> int:
    """Parse with the real `payhara` parser; `--help` stops it before anything starts."""
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    return stopped.value.code


def test_the_cli_parser_check_used_below_can_fail():
    assert cli_exit_code(["run", "intake", "--help"]) == 0
    assert cli_exit_code(["run", "no-such-service", "--help"]) == 2


@pytest.mark.parametrize("service", SERVICES)
def test_every_desk_service_runs_through_the_cli(service):
    assert service in COMPOSE
    assert command_of(service) == ["payhara", "run", service]
    assert cli_exit_code(command_of(service)[1:] + ["--help"]) == 0


@pytest.mark.parametrize("service", SERVICES)
def test_every_desk_service_listens_on_all_interfaces_after_the_migration(service):
    spec = COMPOSE[service]
    assert spec["environment"]["PAYHARA_HTTP_HOST"] == "0.0.0.0"
    assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "container_name" not in spec  # a fixed name would forbid --scale


@pytest.mark.parametrize("service", SERVICES)
def test_every_desk_service_health_check_asks_readyz_on_its_own_port(service):
    port = Settings.model_fields[f"{service}_port"].default  # no port override in the compose file
    assert f"PAYHARA_{service.upper()}_PORT" not in COMPOSE[service]["environment"]
    check = healthcheck_text(service)
    assert f"http://127.0.0.1:{port}/readyz" in check
    assert "urllib" in check and "curl" not in check


def test_only_the_web_form_and_the_console_are_published():
    published = {name: spec["ports"] for name, spec in COMPOSE.items() if spec.get("ports")}
    assert published == {"intake": ["8000:8000"], "console": ["8004:8004"]}


def test_the_desk_refuses_to_start_in_production_without_a_console_secret():
    for service in SERVICES:
        env = COMPOSE[service]["environment"]
        assert env["PAYHARA_CONSOLE_SECRET"].startswith("${PAYHARA_CONSOLE_SECRET:?")
        assert env["PAYHARA_ENV"] in ("production", "${PAYHARA_ENV:-production}")
        assert "@postgres:5432/" in env["PAYHARA_DATABASE_URL"] and "@rabbitmq:5672/" in env["PAYHARA_AMQP_URL"]


def test_migrate_and_smtp_run_their_cli_commands():
    assert command_of("migrate") == ["payhara", "migrate"]
    assert cli_exit_code(["migrate", "--help"]) == 0
    assert {d: c["condition"] for d, c in COMPOSE["migrate"]["depends_on"].items()} == {
        "rabbitmq": "service_healthy", "postgres": "service_healthy",
    }
    assert command_of("smtp") == ["payhara", "smtp-sink"]
    assert cli_exit_code(["smtp-sink", "--help"]) == 0
    assert COMPOSE["smtp"]["environment"]["PAYHARA_SMTP_HOST"] == "0.0.0.0"


def test_every_long_running_service_has_a_health_check():
    long_running = set(COMPOSE) - {"migrate"}  # a one-shot job has no health to report
    assert {"postgres", "rabbitmq", "smtp", *SERVICES} <= long_running
    for service in long_running:
        assert COMPOSE[service]["healthcheck"]["test"], service
    assert "pg_isready" in healthcheck_text("postgres")
    assert "rabbitmq-diagnostics -q ping" in healthcheck_text("rabbitmq")


def test_the_payhara_console_script_is_the_cli_main():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["payhara"] == "services.cli:main"
    assert callable(cli.main)


def test_the_image_runs_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in dockerfile and "pip install ." in dockerfile
    assert any(line.startswith("USER ") and line.split()[1] not in ("root", "0") for line in dockerfile.splitlines())
