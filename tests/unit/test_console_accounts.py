"""Operator password hashes (argon2id, the old scrypt ones still verified), logins, control
characters, and the lock-out rule."""
from datetime import datetime, timedelta, timezone

import pytest
from argon2 import Type, extract_parameters

from services.console.accounts import has_control_characters, normalize_login
from services.console.lockout import Locked, locked_until
from services.console.passwords import hash_password, needs_rehash, verify_password

# written by the console's scrypt code before argon2id: N=2**14, r=8, p=1, 16-byte salt, 32-byte key
SCRYPT_HASH = "scrypt$16384$8$1$KaIT+YQ1ttTWGas8+hyElA==$VGpiqak3r1f9mzUQT3+ktsPVQ+5sRG+lR7AUdcEeVVM="
SCRYPT_PASSWORD = "correct horse battery"


def test_hashes_are_argon2id_with_rfc_9106_parameters():
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$v=19$")
    parameters = extract_parameters(stored)
    assert parameters.type is Type.ID
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (64 * 1024, 3, 4)
    assert (parameters.salt_len, parameters.hash_len) == (16, 32)
    assert not needs_rehash(stored)


def test_the_right_password_verifies_and_a_wrong_one_does_not():
    stored = hash_password("correct horse battery")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterx", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt():
    first, second = hash_password("same password 1"), hash_password("same password 1")
    assert first != second
    assert verify_password("same password 1", first) and verify_password("same password 1", second)


def test_non_ascii_passwords_work():
    stored = hash_password("パスワード１２３４５６７８")
    assert verify_password("パスワード１２３４５６７８", stored)
    assert not verify_password("パスワード12345678", stored)


def test_an_old_scrypt_hash_still_verifies_and_asks_for_a_rehash():
    assert verify_password(SCRYPT_PASSWORD, SCRYPT_HASH)
    assert not verify_password("correct horse batterx", SCRYPT_HASH)
    assert needs_rehash(SCRYPT_HASH)


def test_weaker_argon2_parameters_ask_for_a_rehash():
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("correct horse battery")
    assert verify_password("correct horse battery", weak)
    assert needs_rehash(weak)


def test_values_that_are_not_our_hashes_never_verify():
    good = hash_password("correct horse battery")
    for stored in ("", "plain", "bcrypt$1$2$3$aa$bb", good.replace("argon2id", "argon2x", 1), good[:-8],
                   "scrypt$16384$8$1$not-base64!$AAAA", "scrypt$x$8$1$AAAA$AAAA",
                   "scrypt$1099511627776$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"):
        assert not verify_password("correct horse battery", stored)


def test_logins_ignore_case_width_and_surrounding_space():
    assert normalize_login(" Ｔａｎａｋａ ") == "tanaka"


@pytest.mark.parametrize("text", ["sato\x00", "\x1b[31m", "a\x7fb", "tab\there", "line\nbreak", "\x85"])
def test_control_characters_are_found(text):
    assert has_control_characters(text)


def test_line_breaks_and_tabs_are_text_only_where_allowed():
    assert not has_control_characters("一行目\r\n二行目\tタブ", allow_line_breaks=True)
    assert has_control_characters("一行目\x00", allow_line_breaks=True)
    assert not has_control_characters("佐藤 花子　（全角空白）")


T0 = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)
WINDOW, LOCKOUT = timedelta(minutes=15), timedelta(minutes=15)


def at(*minutes: float) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in minutes]


def test_five_failures_within_the_window_lock_for_fifteen_minutes_from_the_fifth():
    assert locked_until(at(0, 1, 2, 3), 5, WINDOW, LOCKOUT) is None
    assert locked_until(at(0, 1, 2, 3, 4), 5, WINDOW, LOCKOUT) == T0 + timedelta(minutes=19)


def test_failures_spread_wider_than_the_window_do_not_lock():
    assert locked_until(at(0, 4, 8, 12, 16, 20, 24), 5, WINDOW, LOCKOUT) is None


def test_the_latest_lock_counts_and_order_does_not_matter():
    failures = at(40, 0, 1, 41, 2, 3, 42, 4, 43, 44)
    assert locked_until(failures, 5, WINDOW, LOCKOUT) == T0 + timedelta(minutes=59)


def test_retry_after_rounds_up_to_a_whole_second():
    assert Locked("login", T0 + timedelta(seconds=90.2), T0).retry_after_s == 91
    assert Locked("login", T0 + timedelta(milliseconds=1), T0).retry_after_s == 1
