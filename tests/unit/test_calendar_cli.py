"""`payhara calendar`: a month's closed days, and one day open or closed, from the desk calendar."""
import pytest

from services.cli import main
from shared.calendar import DeskCalendar
from shared.settings import get_settings


def test_a_month_lists_each_closed_day_with_weekday_and_reason(capsys):
    assert main(["calendar", "2026-09"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2026年9月  営業日 19日 / 休業日 11日"
    assert [line.split() for line in lines[7:10]] == [
        ["9月21日（月）", "敬老の日"], ["9月22日（火）", "国民の休日"], ["9月23日（水）", "秋分の日"]]
    assert lines[1].split() == ["9月5日（土）", "土曜日"] and lines[2].split() == ["9月6日（日）", "日曜日"]
    assert "config/desk-calendar.toml" in lines[-1]  # where the desk's own days come from


def test_the_year_end_closure_across_the_new_year(capsys):
    assert main(["calendar", "2027-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines[1:4]] == [
        ["1月1日（金）", "年末年始休業"], ["1月2日（土）", "年末年始休業"], ["1月3日（日）", "年末年始休業"]]
    assert not any("1月4日" in line for line in lines)  # Monday 4 Jan is open


@pytest.mark.parametrize(("day", "answer"), [
    ("2026-09-22", "2026年9月22日（火） 休業日 (closed): 国民の休日\n次の営業日 (next open day): 2026年9月24日（木）\n"),
    ("2026-05-06", "2026年5月6日（水） 休業日 (closed): 振替休日\n次の営業日 (next open day): 2026年5月7日（木）\n"),
    ("2026-09-24", "2026年9月24日（木） 営業日 (open)\n"),
])
def test_check_says_open_or_closed_and_why_with_exit_0(capsys, day, answer):
    assert main(["calendar", "check", day]) == 0
    assert capsys.readouterr().out == answer


@pytest.mark.parametrize(("argv", "english"), [
    ([], "give the month as YYYY-MM"),
    (["2026-13"], "give the month as YYYY-MM"),
    (["2026/09"], "give the month as YYYY-MM"),
    (["check"], "give the day as YYYY-MM-DD"),
    (["check", "2026-02-30"], "give the day as YYYY-MM-DD"),
    (["check", "20260922"], "give the day as YYYY-MM-DD"),
    (["2026-09", "2026-09-22"], "a month takes no day"),
    (["2100-01"], "no Japanese holiday data for 2100"),
])
def test_bad_input_is_a_japanese_and_english_error_with_exit_2(capsys, argv, english):
    assert main(["calendar", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("payhara calendar: ") and english in captured.err
    assert any("\u3040" <= ch <= "\u9fff" for ch in captured.err.split("/")[0])  # Japanese first


def test_a_file_opening_shows_in_the_month_and_a_broken_file_exits_1(tmp_path, monkeypatch, capsys):
    path = tmp_path / "desk.toml"
    path.write_text('reviewed_by = "山田"\nreviewed_on = 2026-11-27\n'
                    '[[opening]]\ndate = 2026-11-21\nreason = "土曜特別相談日"\n', encoding="utf-8")
    monkeypatch.setenv("PAYHARA_CALENDAR_FILE", str(path))
    try:
        for broken in (False, True):
            get_settings.cache_clear()
            DeskCalendar.default.cache_clear()
            if broken:
                path.write_text('reviewed_on = 2026-11-27\n', encoding="utf-8")
                assert main(["calendar", "2026-11"]) == 1
                assert f"{path}: reviewed_by is missing" in capsys.readouterr().err
            else:
                assert main(["calendar", "2026-11"]) == 0
                lines = capsys.readouterr().out.splitlines()
                assert lines[0] == "2026年11月  営業日 20日 / 休業日 10日"  # the Saturday counts as open
                assert ["11月21日（土）", "営業（土曜特別相談日）"] in [line.split() for line in lines]
                assert ["11月22日（日）", "日曜日"] in [line.split() for line in lines]
                assert lines[-1].endswith(f"{path}（確認 山田, 2026-11-27）")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        DeskCalendar.default.cache_clear()
