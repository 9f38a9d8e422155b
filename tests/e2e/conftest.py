import asyncio

import pytest

from tests.support import DeskProcesses, seed


@pytest.fixture(scope="module")
async def running_desk(desk, tmp_path_factory):
    await seed(desk)
    processes = DeskProcesses(desk, tmp_path_factory.mktemp("desk"), PAYHARA_SLOT_CAPACITY="50")
    try:
        await asyncio.to_thread(processes.start_all)
        yield processes
    finally:
        await asyncio.to_thread(processes.stop_all)
