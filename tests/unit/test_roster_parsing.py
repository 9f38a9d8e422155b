"""The roster's parsing: the weekly roster from the environment, and `payhara roster` arguments."""
from datetime import date, datetime

import pytest
from pydantic import ValidationError

from services.cli import build_parser
from services.scheduler.roster import RosterDay, month_report
from shared.calendar import JST
from shared.settings import Settings

MONDAY, TUESDAY, SATURDAY = date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 5)


def test_the_weekly_roster_is_read_from_env_json_and_unnamed_weekdays_take_the_default(monkeypatch):
    monkeypatch.setenv("PAYHARA_SLOT_CAPACITY", "3")
    monkeypatch.setenv("PAYHARA_SLOT_CAPACITY_BY_WEEKDAY", '{"mon": 6, "sat": 0}')
    settings = Settings()
    assert settings.slot_capacity_by_weekday == {"mon": 6, "sat": 0}
    assert [settings.weekly_capacity(d) for d in (MONDAY, TUESDAY, SATURDAY)] == [6, 3, 0]


@pytest.mark.parametrize("roster", ['{"monday": 6}', '{"mon": -1}', '{"Mon": 2}'])
def test_a_weekly_roster_with_an_unknown_weekday_or_a_negative_capacity_is_refused(monkeypatch, roster):
    monkeypatch.setenv("PAYHARA_SLOT_CAPACITY_BY_WEEKDAY", roster)
    with pytest.raises(ValidationError, match="PAYHARA_SLOT_CAPACITY_BY_WEEKDAY takes weekdays mon, tue"):
        Settings()


def test_roster_set_and_show_parse_their_arguments():
    parser = build_parser()
    set_day = parser.parse_args(["roster", "set", "2026-12-02", "--capacity", "0", "--by", "sato"])
    assert (set_day.roster_command, set_day.day, set_day.capacity, set_day.by) == ("set", "2026-12-02", 0, "sato")
    assert parser.parse_args(["roster", "show", "2026-12"]).month == "2026-12"


@pytest.mark.parametrize("capacity", ["-1", "two", "1.5"])
def test_roster_set_refuses_a_capacity_that_is_not_a_whole_number_from_0(capacity, capsys):
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args(["roster", "set", "2026-12-02", "--capacity", capacity])
    assert exit.value.code == 2
    assert "must be a whole number, 0 or more" in capsys.readouterr().err


def test_a_month_report_says_where_each_capacity_comes_from_and_what_is_booked():
    days = [RosterDay(MONDAY, 4, None, None, None, None),
            RosterDay(TUESDAY, 2, "sato", datetime(2026, 11, 29, 16, 5, tzinfo=JST), 36, 5)]
    lines = month_report(2026, 12, days).splitlines()
    assert lines[0].startswith("2026年12月")
    assert lines[1].split() == ["11月30日（月）", "4", "週の定員", "(weekly)"]
    assert lines[2].split() == ["12月1日（火）", "2", "指定", "sato", "2026-11-29", "16:05", "予約", "5/36"]
