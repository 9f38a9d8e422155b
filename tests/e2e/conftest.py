import asyncio

import pytest

from tests.e2e.desk_processes import ROOT, DeskProcesses

OPERATOR = ("e2e-operator", "correct horse battery staple")


async def seed(settings) -> None:
    """The demo registry for eligibility and one operator for the console."""
    from services.console.accounts import add_operator
    from services.eligibility.registry import replace_registry
    from services.eligibility.registry_csv import parse_institutions, parse_members
    from shared.db import make_engine, make_sessions

    engine = make_engine(settings)
    sessions = make_sessions(engine)
    members = parse_members((ROOT / "demo" / "members.csv").read_text(encoding="utf-8-sig"))
    institutions = parse_institutions((ROOT / "demo" / "institutions.csv").read_text(encoding="utf-8-sig"))
    await replace_registry(sessions, members, institutions)
    await add_operator(sessions, OPERATOR[0], "試験用オペレーター", OPERATOR[1])
    await engine.dispose()


@pytest.fixture(scope="module")
async def running_desk(desk, tmp_path_factory):
    await seed(desk)
    processes = DeskProcesses(desk, tmp_path_factory.mktemp("desk"), PAYHARA_SLOT_CAPACITY="50")
    try:
        await asyncio.to_thread(processes.start_all)
        yield processes
    finally:
        await asyncio.to_thread(processes.stop_all)
