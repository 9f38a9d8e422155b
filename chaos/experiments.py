"""The experiments: each one a fresh desk, load at a fixed rate, one fault in the middle of it,
a settle period, then the count. Bounded everywhere: the load has a count, the fault a duration,
the settle a deadline; the desk it started is stopped in a finally.
"""
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from chaos import faults, measure
from chaos.desk import ChaosDesk
from chaos.load import Load, LoadResult
from chaos.servers import PrivateServers
from shared.db import libpq_dsn
from shared.settings import Settings
from tests.support import prepare_desk, seed

QUIET_S = 3.0  # after the last task: a duplicate still on its way has time to land
MIN_COUNT = 20


@dataclass(frozen=True)
class Experiment:
    name: str
    what: str
    fault: Callable[[faults.Fault], Awaitable[None]]
    rate: float = 10.0  # consultations per second
    seconds: float = 30.0  # of load at scale 1
    fault_at: float = 1 / 3  # of the load's duration
    first: int = 0  # submission(first + step * k): step 2 from 1 gives e-mail contacts only
    step: int = 1


def _outage(name: str, what: str, fault, rate: float) -> Experiment:
    # 10 s of load before the outage, the outage itself (60 s), 15 s after it
    return Experiment(name, what, fault, rate=rate, seconds=85.0, fault_at=10 / 85)


EXPERIMENTS = [
    *(Experiment(f"kill-{s}", f"kill -9 of {s} under load, back after {faults.RESTART_AFTER_S:.0f} s",
                 partial(faults.kill_and_restart, service=s))
      for s in ("intake", "eligibility", "scheduler", "notifier", "console")),
    _outage("postgres-outage", "PostgreSQL stopped (pg_ctl -m fast) for 60 s at 20/s", faults.postgres_outage, 20),
    _outage("rabbitmq-outage", "RabbitMQ stopped for 60 s and started on the same data", faults.rabbitmq_outage, 10),
    Experiment("poison", "malformed messages on payhara.events among good traffic", faults.publish_poison),
    Experiment("sigterm-all", "SIGTERM of every service, all started again", faults.sigterm_everything),
    Experiment("notifier-mid-batch", "kill -9 of the notifier while acknowledgement e-mails go out",
               faults.kill_notifier_mid_batch, rate=20, first=1, step=2),
]
BY_NAME = {e.name: e for e in EXPERIMENTS}


@dataclass
class Outcome:
    name: str
    load: LoadResult = field(default_factory=LoadResult)
    one_task: int = 0
    lost: int = 0
    duplicated: int = 0
    duplicated_where: dict = field(default_factory=dict)
    mails: int = 0
    mailed: int = 0
    duplicate_mails: int = 0
    dlq_depth: int = 0
    dlq_good: int = 0
    dlq_poison: int = 0
    poison_expected: int = 0
    good_reasons: dict = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def accepted(self) -> int:
        return len(self.load.accepted)


async def run(experiment: Experiment, servers: PrivateServers, settings: Settings, scale: float,
              logs: Path, desks: list[ChaosDesk]) -> Outcome:
    """One experiment on a freshly reset database, topology and mail directory."""
    outcome, started = Outcome(experiment.name), time.monotonic()
    desk = fault = None
    try:
        await asyncio.to_thread(servers.ensure_up)
        await prepare_desk(settings)
        await seed(settings)
        desk = ChaosDesk(settings, logs / experiment.name)
        desks.append(desk)  # the runner closes it too, should this coroutine be torn down
        dsn = libpq_dsn(settings.database_url)
        fault = faults.Fault(desk, servers, dsn, scale)
        await asyncio.to_thread(desk.start_all)
        count = max(MIN_COUNT, round(experiment.rate * experiment.seconds * scale))
        load = Load(desk.url("intake"), count, experiment.rate, experiment.first, experiment.step)
        outcome.load = load.result  # filled in as the answers come

        async def fault_later() -> None:
            await asyncio.sleep(load.duration_s * experiment.fault_at)
            await experiment.fault(fault)

        bound = load.duration_s + 600  # the load, the longest fault, and every restart's readiness
        done = await asyncio.wait_for(asyncio.gather(load.run(), fault_later(), return_exceptions=True), bound)
        if failed := [r for r in done if isinstance(r, Exception)]:  # still settle and count: what did it cost?
            outcome.error = f"{type(failed[0]).__name__}: {failed[0]}"[:300]
        await settle(outcome, desk, servers, dsn, scale)
        await count_effects(outcome, fault, desk, servers, dsn)
    except Exception as error:  # the row says what broke; the other experiments still run
        outcome.error = f"{type(error).__name__}: {error}"[:300]
    finally:
        if desk is not None:
            await asyncio.to_thread(desk.close)
            outcome.notes += desk.problems
        outcome.notes += fault.notes if fault else []
        outcome.seconds = time.monotonic() - started
    return outcome


async def settle(outcome: Outcome, desk: ChaosDesk, servers: PrivateServers, dsn: str, scale: float) -> None:
    """Until every accepted consultation has its task and nothing is left in a queue or an
    outbox, or the deadline: what is missing then is lost."""
    wanted = {r.consultation_id for r in outcome.load.accepted.values()}

    async def all_tasked():
        return wanted <= set(await measure.contact_tasks(dsn))

    if not await measure.wait_until(all_tasked, 60 + 120 * scale):
        outcome.notes.append("settle deadline reached with consultations still untasked")

    async def drained():
        depths = await asyncio.to_thread(measure.queue_depths, servers.rabbit)
        busy = sum(n for q, n in depths.items() if not q.endswith(".dlq"))
        return busy == 0 and await measure.unsent_outbox_rows(dsn) == 0

    if not await measure.wait_until(drained, 60, every_s=3.0):
        outcome.notes.append("queues or outboxes not empty at the end")
    await asyncio.sleep(QUIET_S)


async def count_effects(outcome: Outcome, fault: faults.Fault, desk: ChaosDesk, servers: PrivateServers,
                        dsn: str) -> None:
    accepted = outcome.load.accepted.values()
    tasks = await measure.contact_tasks(dsn)
    outcome.one_task = sum(1 for r in accepted if tasks[r.consultation_id] == 1)
    outcome.lost = sum(1 for r in accepted if tasks[r.consultation_id] == 0)
    outcome.duplicated_where = {k: v for k, v in (await measure.duplicated_effects(dsn)).items() if v}
    outcome.duplicated = len(set().union(*outcome.duplicated_where.values()))

    mails = measure.acknowledgements(desk.mail_dir)
    outcome.mails, outcome.mailed = sum(mails.values()), len(mails)
    outcome.duplicate_mails = sum(1 for n in mails.values() if n > 1)
    flagged = await measure.flagged_duplicate_mails(dsn)
    if flagged or outcome.duplicate_mails:
        outcome.notes.append(f"{outcome.duplicate_mails} repeated e-mails in the sink, "
                             f"{'?' if flagged is None else flagged} on record as possible duplicates by the notifier")
    unmailed = sum(1 for r in accepted if r.by_email and not mails[r.consultation_id])
    if unmailed:
        outcome.notes.append(f"{unmailed} accepted e-mail consultations without an acknowledgement")

    letters = await measure.dead_letters(servers.rabbit.url)
    good = [d for d in letters if d.message_id not in fault.poison_ids]
    outcome.dlq_depth, outcome.dlq_good = len(letters), len(good)
    outcome.dlq_poison, outcome.poison_expected = len(letters) - len(good), fault.poison_expected
    for letter in good:
        key = f"{letter.queue}: {letter.reason}"
        outcome.good_reasons[key] = outcome.good_reasons.get(key, 0) + 1
