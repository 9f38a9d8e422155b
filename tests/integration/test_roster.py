"""The roster on the real database: a date's own capacity per slot, given to the day's slots when
a booking creates them and moved on slots that exist, never under what is booked; the weekly
roster for the other days; `payhara roster set / show` with their exit codes."""
import asyncio
from datetime import date, datetime

import pytest
from sqlalchemy import select

from services import cli
from services.scheduler.booking import book_callbacks
from services.scheduler.orm import roster
from services.scheduler.roster import RosterRefused, month, set_capacity
from shared.calendar import JST
from shared.db import make_engine, make_sessions
from shared.settings import get_settings
from tests.integration import test_booking
from tests.integration.test_booking import NOW, PROMISED, confirmed, slot_table

scheduler = test_booking.scheduler  # the fixture: an empty scheduler schema
WEDNESDAY = date(2026, 11, 25)
FUTURE = date(2027, 2, 3)  # a Wednesday still ahead whatever the clock of the test run says


def by_day(table) -> dict[date, list]:
    days: dict[date, list] = {}
    for row in table:
        days.setdefault(row.starts_at.astimezone(JST).date(), []).append(row)
    return days


async def test_bookings_take_the_dates_own_capacity_and_the_weekly_roster_elsewhere(scheduler):
    sessions, settings = scheduler
    weekly = settings.model_copy(update={"slot_capacity": 4, "slot_capacity_by_weekday": {"wed": 3}})
    await set_capacity(sessions, weekly, PROMISED, 1, "sato", now=NOW)
    await book_callbacks([confirmed(i) for i in range(20)], sessions, weekly, now=NOW)
    days = by_day(await slot_table(sessions))
    assert [(r.capacity, r.booked) for r in days[PROMISED]] == [(1, 1)] * 18  # one each, then the next day
    assert [(r.capacity, r.booked) for r in days[WEDNESDAY]] == [(3, 2)] + [(3, 0)] * 17


async def test_setting_a_day_with_slots_moves_their_capacity_but_never_under_what_is_booked(scheduler):
    sessions, settings = scheduler
    await book_callbacks([confirmed(i) for i in range(3)], sessions, settings, now=NOW)  # 9:00 has 3 of 4
    await set_capacity(sessions, settings, PROMISED, 6, "sato", now=NOW)
    assert {r.capacity for r in await slot_table(sessions)} == {6}
    with pytest.raises(RosterRefused, match="already has 3 bookings: its capacity cannot go below 3") as refused:
        await set_capacity(sessions, settings, PROMISED, 2, "suzuki", now=NOW)
    assert "09:00 の枠はすでに3件予約済みです" in str(refused.value)
    assert {r.capacity for r in await slot_table(sessions)} == {6}  # nothing changed, not even the roster row
    async with sessions() as s:
        assert (await s.execute(select(roster.c.capacity, roster.c.set_by))).all() == [(6, "sato")]
    await set_capacity(sessions, settings, PROMISED, 3, "suzuki", now=NOW)  # down to what is booked: fine
    assert {r.capacity for r in await slot_table(sessions)} == {3}


@pytest.mark.parametrize(("day", "why"), [(date(2026, 11, 23), "the desk is closed"), (date(2026, 11, 19), "is past")])
async def test_a_closed_or_past_day_is_refused(scheduler, day, why):
    sessions, settings = scheduler
    with pytest.raises(RosterRefused, match=why):
        await set_capacity(sessions, settings, day, 2, "sato", now=NOW)


async def test_a_month_shows_each_open_day_its_source_and_seats(scheduler):
    sessions, settings = scheduler
    await set_capacity(sessions, settings, WEDNESDAY, 2, "sato", now=NOW)
    await book_callbacks([confirmed(1, WEDNESDAY)], sessions, settings, now=NOW)
    days = {d.day: d for d in await month(sessions, settings, 2026, 11)}
    assert date(2026, 11, 23) not in days and date(2026, 11, 28) not in days  # a holiday, a Saturday
    assert len(days) == 19
    assert (days[WEDNESDAY].capacity, days[WEDNESDAY].set_by, days[WEDNESDAY].seats, days[WEDNESDAY].booked) == (
        2, "sato", 36, 1)
    assert (days[PROMISED].capacity, days[PROMISED].set_by, days[PROMISED].seats) == (
        settings.slot_capacity, None, None)


async def test_the_cli_sets_shows_and_refuses_below_the_booked_with_exit_2(scheduler, capsys):
    sessions, settings = scheduler
    get_settings.cache_clear()
    setting = ["roster", "set", FUTURE.isoformat(), "--capacity", "5", "--by", "sato"]
    assert await asyncio.to_thread(cli.main, setting) == 0
    assert "2027年2月3日（水） 1枠あたり5件" in capsys.readouterr().out
    await book_callbacks([confirmed(i, FUTURE) for i in range(2)], sessions, settings, now=NOW)
    assert await asyncio.to_thread(cli.main, ["roster", "set", FUTURE.isoformat(), "--capacity", "1"]) == 2
    assert "capacity cannot go below 2" in capsys.readouterr().err
    assert await asyncio.to_thread(cli.main, ["roster", "show", "2027-02"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "2月3日" in line)
    assert line.split()[1:4] == ["5", "指定", "sato"] and line.endswith("予約 2/90")
    assert await asyncio.to_thread(cli.main, ["roster", "show", "2027/02"]) == 2
    assert "give the month as YYYY-MM" in capsys.readouterr().err
    assert await asyncio.to_thread(cli.main, ["roster", "set", "2027-02-30", "--capacity", "1"]) == 2
    assert "give the day as YYYY-MM-DD" in capsys.readouterr().err


async def test_a_roster_change_racing_four_booking_instances_neither_deadlocks_nor_loses_its_capacity(scheduler):
    # The day is created by whichever comes first: bookings that read the roster before the change
    # must not leave slots at the old capacity once it has committed.
    sessions, settings = scheduler
    tight = settings.model_copy(update={"slot_capacity": 2})
    engines = [make_engine(settings, pool_size=4) for _ in range(4)]
    instances = [make_sessions(e) for e in engines]
    deliveries = [confirmed(i) for i in range(40)]
    try:
        await asyncio.gather(
            set_capacity(instances[0], tight, PROMISED, 3, "sato", now=NOW),
            *(book_callbacks(deliveries[i:i + 5], instances[i // 5 % 4], tight, now=NOW) for i in range(0, 40, 5)))
    finally:
        for engine in engines:
            await engine.dispose()
    table = by_day(await slot_table(sessions))
    assert {r.capacity for r in table[PROMISED]} == {3}
    assert all(r.booked <= r.capacity for rows in table.values() for r in rows)
    assert sum(r.booked for rows in table.values() for r in rows) == 40
