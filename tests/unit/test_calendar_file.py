"""The desk's own calendar file: reviewed, read strictly, and applied by every service."""
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from shared.calendar import JST, CalendarFileError, DeskCalendar, first_contact_day, is_business_day
from shared.calendar_file import read_desk_days
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
REVIEWED = 'reviewed_by = "事務局 山田"\nreviewed_on = 2026-11-27\n'
SATURDAY_OPEN = '[[opening]]\ndate = 2026-11-21\nreason = "土曜特別相談日"\n'
WEDNESDAY_CLOSED = '[[closure]]\ndate = 2026-11-25\nreason = "臨時休業（職員研修）"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "desk-calendar.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def desk_env(monkeypatch):
    """Set PAYHARA_* variables for DeskCalendar.default(), and forget the cached calendar after."""
    def use(**variables: str) -> DeskCalendar:
        for name, value in variables.items():
            monkeypatch.setenv(f"PAYHARA_{name.upper()}", value)
        get_settings.cache_clear()
        DeskCalendar.default.cache_clear()
        return DeskCalendar.default()
    yield use
    monkeypatch.undo()
    get_settings.cache_clear()
    DeskCalendar.default.cache_clear()


def test_an_opening_opens_a_saturday(tmp_path):
    desk = DeskCalendar(read_desk_days(write(tmp_path, REVIEWED + SATURDAY_OPEN)))
    assert desk.is_open(date(2026, 11, 21)) and desk.closure_reason(date(2026, 11, 21)) is None
    assert desk.closure_reason(date(2026, 11, 22)) == "日曜日"  # only the listed day
    assert desk.earliest_contact(datetime(2026, 11, 20, 16, tzinfo=JST)) == datetime(2026, 11, 21, 9, tzinfo=JST)


def test_a_closure_closes_a_wednesday_with_its_reason(tmp_path):
    desk = DeskCalendar(read_desk_days(write(tmp_path, REVIEWED + WEDNESDAY_CLOSED)))
    assert desk.closure_reason(date(2026, 11, 25)) == "臨時休業（職員研修）"
    assert desk.next_open_day(date(2026, 11, 24)) == date(2026, 11, 26)
    assert desk.earliest_contact(datetime(2026, 11, 25, 10, tzinfo=JST)) == datetime(2026, 11, 26, 9, tzinfo=JST)
    assert desk.days.reviewed_by == "事務局 山田" and desk.days.reviewed_on == date(2026, 11, 27)


def test_the_shipped_file_is_reviewed_and_adds_nothing_to_the_national_calendar(desk_env):
    desk = desk_env()
    assert desk.days.path == ROOT / "config" / "desk-calendar.toml"
    assert desk.days.reviewed_by and desk.days.closures == {} and desk.days.openings == {}
    national = DeskCalendar()
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(2 * 365)]
    assert [desk.closure_reason(d) for d in days] == [national.closure_reason(d) for d in days]
    assert (desk.opens, desk.closes, desk.cutoff, desk.lead, desk.slot) == (
        national.opens, national.closes, national.cutoff, national.lead, national.slot)


def test_payhara_calendar_file_is_honoured_by_every_helper(tmp_path, desk_env):
    desk = desk_env(calendar_file=str(write(tmp_path, REVIEWED + WEDNESDAY_CLOSED)))
    assert desk.days.path == tmp_path / "desk-calendar.toml"
    assert not is_business_day(date(2026, 11, 25))  # the module helpers use the same calendar
    assert first_contact_day(datetime(2026, 11, 24, 16, tzinfo=JST)) == date(2026, 11, 26)


def test_the_hours_come_from_the_settings(desk_env):
    desk = desk_env(same_day_cutoff="15:00", contact_lead_minutes="15", slot_minutes="20")
    assert desk.earliest_contact(datetime(2026, 11, 25, 10, 1, tzinfo=JST)) == datetime(2026, 11, 25, 10, 20, tzinfo=JST)
    assert desk.earliest_contact(datetime(2026, 11, 25, 15, tzinfo=JST)) == datetime(2026, 11, 26, 9, tzinfo=JST)


def test_a_time_setting_that_is_not_a_time_is_refused_by_name(desk_env):
    with pytest.raises(ValueError, match="PAYHARA_SAME_DAY_CUTOFF must be a Japan time like 16:00, not '4pm'"):
        desk_env(same_day_cutoff="4pm")


@pytest.mark.parametrize(("text", "reason"), [
    ('reviewed_on = 2026-11-27\n', "reviewed_by is missing"),
    ('reviewed_by = " "\nreviewed_on = 2026-11-27\n', "reviewed_by is missing"),
    ('reviewed_by = "山田"\n', "reviewed_on is missing"),
    ('reviewed_by = "山田"\nreviewed_on = "2026-11-27"\n', "reviewed_on is missing or not a date"),
    (REVIEWED + '[[closure]\ndate = 2026-11-25\n', "not valid TOML"),
    (REVIEWED + '[[closures]]\ndate = 2026-11-25\nreason = "x"\n', "unknown key.*closures"),
    (REVIEWED + '[[closure]]\ndate = 2026-11-25\n', r"\[\[closure\]\] number 1 must have exactly a date and a reason"),
    (REVIEWED + '[[opening]]\ndate = "2026-11-21"\nreason = "x"\n', "date must be an unquoted date"),
    (REVIEWED + '[[closure]]\ndate = 2026-11-25\nreason = ""\n', "reason must be a non-empty text"),
    (REVIEWED + WEDNESDAY_CLOSED * 2, "2026-11-25 is listed twice"),
    (REVIEWED + WEDNESDAY_CLOSED + '[[opening]]\ndate = 2026-11-25\nreason = "x"\n', "both as a closure and as an opening"),
    (REVIEWED + 'closure = "2026-11-25"\n', r"must be written as \[\[closure\]\] tables"),
])
def test_a_malformed_file_is_refused_at_load_naming_the_file(tmp_path, text, reason):
    path = write(tmp_path, text)
    with pytest.raises(CalendarFileError, match=reason) as refused:
        read_desk_days(path)
    assert str(path) in str(refused.value)


def test_a_missing_file_is_refused_naming_it_and_the_setting(tmp_path, desk_env):
    with pytest.raises(CalendarFileError, match=f"{tmp_path / 'nowhere.toml'}: not found .*PAYHARA_CALENDAR_FILE"):
        desk_env(calendar_file=str(tmp_path / "nowhere.toml"))


def test_an_opening_does_not_hide_a_year_without_holiday_data(tmp_path):
    desk = DeskCalendar(read_desk_days(write(tmp_path, REVIEWED + '[[opening]]\ndate = 2100-01-04\nreason = "x"\n')))
    with pytest.raises(ValueError, match="2100"):
        desk.is_open(date(2100, 1, 4))


def test_the_image_ships_the_calendar_file_and_points_at_it():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY config ./config" in dockerfile
    assert "PAYHARA_CALENDAR_FILE=/app/config/desk-calendar.toml" in dockerfile
