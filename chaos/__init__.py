"""`make chaos`: the desk's fault suite, run on demand (not part of `make test`).

It starts a private PostgreSQL and a private RabbitMQ node in a temporary directory (so it can
stop, kill and restart them without touching the machine's shared servers), runs every service
as a real process against them, injects one fault per experiment under load, and counts what
the desk promises: no accepted receipt lost, no effect twice, no good event dead-lettered.

    chaos/servers.py      the private PostgreSQL and RabbitMQ, and ports below the client range
    chaos/desk.py         the desk's processes: hard kills of whole process trees, SIGTERM, restart
    chaos/load.py         consultations over HTTP at a fixed rate, bounded in count and time
    chaos/measure.py      what each experiment counts: tasks, duplicates, e-mails, dead letters
    chaos/faults.py       the faults themselves: kill -9, outages, poison messages
    chaos/experiments.py  the experiments: load, fault, settle, measure
    chaos/run.py          the entry point (`python -m chaos.run --only NAME --scale 0.2`)
"""
