#!/usr/bin/env bash
# Start the local PostgreSQL and RabbitMQ where they are installed but stopped, and create what
# the desk needs in them: the `payhara` database and the `payhara_test` and `payhara_bench`
# vhosts (tests and benchmark each reset their own topology). Idempotent.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  echo "gave up waiting for 127.0.0.1:$1" >&2; return 1
}

if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    wait_port 5432
  else
    echo "PostgreSQL is not running on 127.0.0.1:5432 and is not installed here" >&2
  fi
fi

if ! port_open 5672; then
  if command -v rabbitmq-server >/dev/null; then
    echo "starting RabbitMQ"
    rabbitmq-server -detached
    wait_port 5672
  else
    echo "RabbitMQ is not running on 127.0.0.1:5672 and is not installed here" >&2
  fi
fi

if command -v rabbitmqctl >/dev/null && port_open 5672; then
  for _ in $(seq 1 30); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
  for vhost in payhara_test payhara_bench; do
    if ! rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx "$vhost"; then
      rabbitmqctl -q add_vhost "$vhost"
    fi
    rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*'
  done
fi

if command -v psql >/dev/null && port_open 5432; then
  if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname = 'payhara'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -qc 'create database payhara'
  fi
fi
