import asyncio

import pytest

from tests.support import DeskProcesses, seed


@pytest.fixture(scope="module")
async def running_desk(desk, tmp_path_factory):
    await seed(desk)
    # two instances each of intake and notifier (as make bench deploys them): they race on the
    # same queues and outboxes, and every guarantee must hold across them
    processes = DeskProcesses(desk, tmp_path_factory.mktemp("desk"), PAYHARA_SLOT_CAPACITY="50",
                              PAYHARA_WORKERS='{"intake": 2, "notifier": 2}')
    try:
        await asyncio.to_thread(processes.start_all)
        yield processes
    finally:
        await asyncio.to_thread(processes.stop_all)
