# payhara-desk: `make up` runs the whole desk locally, `make test` runs the test suite.
# Both set themselves up on a fresh machine: virtual environment, install, local services.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

TEST_ENV := PAYHARA_ENV=test \
	PAYHARA_DATABASE_URL=$${PAYHARA_TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/payhara_test} \
	PAYHARA_AMQP_URL=$${PAYHARA_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/payhara_test}

.PHONY: up test unit bench chaos install services browser clean

up: install services
	PAYHARA_ENV=dev $(VENV)/bin/payhara up

test: install services browser
	$(TEST_ENV) $(PY) -m pytest -q

unit: install
	$(PY) -m pytest -q tests/unit

# one process per service, as the desk is deployed on two cores (two processes of intake and
# notifier cost more CPU per consultation there: more switching, smaller batches)
BENCH_ENV = PAYHARA_ENV=test \
	PAYHARA_WORKERS=$${PAYHARA_WORKERS:-'{}'} \
	PAYHARA_DATABASE_URL=$${PAYHARA_BENCH_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/payhara_bench} \
	PAYHARA_AMQP_URL=$${PAYHARA_BENCH_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/payhara_bench}

bench: install services
	$(BENCH_ENV) $(PY) bench/consume.py
	$(BENCH_ENV) $(PY) bench/intake.py
	$(BENCH_ENV) $(PY) bench/pipeline.py
	$(BENCH_ENV) $(PY) bench/booking.py
	$(BENCH_ENV) $(PY) bench/registry_import.py

# the fault suite, on demand: its own PostgreSQL and RabbitMQ, every service killed, stopped and
# fed poison under load (chaos/run.py); not part of `make test`
chaos: install
	$(PY) -m chaos.run

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

services:
	./scripts/local-services.sh

# tests/browser drive Debian's Chromium through Playwright (never `playwright install`: no browser
# download); the Japanese fonts make the screenshots readable. Installed when missing, as root or
# with sudo; without either the set-up stops here and says why.
browser:
	@if command -v chromium >/dev/null && dpkg -s fonts-noto-cjk >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "tests/browser need Debian's chromium and fonts-noto-cjk: install them as root" >&2; exit 1; fi; \
	$$SUDO apt-get update -q && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk

clean:
	rm -rf $(VENV) var build *.egg-info
