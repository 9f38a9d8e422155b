import math
import string
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from services.intake import receipts

NUMBER = receipts.receipt_no(42, datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc))
# every character a receipt number can be mistyped as, including the look-alikes of its own
TYPED = string.digits + string.ascii_uppercase + string.ascii_lowercase + "-－ー０１２３４５６７８９ "


def test_receipt_number_uses_the_japan_date_and_a_valid_check_digit():
    assert NUMBER.startswith("PH-261125-0042")  # 16:00 UTC on the 24th is 01:00 on the 25th in Japan
    assert len(NUMBER) == len("PH-261125-00420") and receipts.is_well_formed(NUMBER)


@pytest.mark.parametrize("typo", [
    NUMBER[:-1] + str((int(NUMBER[-1]) + 1) % 10),  # the check digit
    NUMBER.replace("0042", "0024"), NUMBER.replace("261125", "261152"),  # swapped neighbours
    NUMBER.lower(), NUMBER[:-2], "PH-261125-1", "", "PH-٢٦١١٢٥-00420",
])
def test_a_mistyped_receipt_number_is_not_well_formed(typo):
    assert not receipts.is_well_formed(typo)


def test_numbers_keep_growing_past_four_digits():
    number = receipts.receipt_no(123456, datetime(2026, 11, 24, tzinfo=timezone.utc))
    assert number.startswith("PH-261124-123456") and receipts.is_well_formed(number)


@given(st.integers(min_value=0, max_value=10**7),
       st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(timezone.utc)))
def test_every_single_typo_and_swap_of_neighbours_is_caught(sequence, received_at):
    number = receipts.receipt_no(sequence, received_at)
    assert receipts.is_well_formed(number)
    for i, original in enumerate(number):
        for typed in TYPED:
            if typed != original:
                assert not receipts.is_well_formed(number[:i] + typed + number[i + 1:]), (number, i, typed)
    for i in range(len(number) - 1):
        if number[i] != number[i + 1]:
            assert not receipts.is_well_formed(number[:i] + number[i + 1] + number[i] + number[i + 2:])


def test_a_number_typed_in_full_width_or_with_spaces_reads_as_stored():
    typed = NUMBER.lower().translate({ord(c): ord(c) + 0xFEE0 for c in string.ascii_letters + string.digits})
    assert receipts.typed_receipt_no(f" {typed.replace('-', 'ー')} ") == NUMBER
    assert receipts.typed_receipt_no(NUMBER.replace("-", " ")) == NUMBER


def test_a_status_code_is_short_unambiguous_and_hard_to_guess():
    codes = [receipts.new_status_token()[0] for _ in range(200)]
    alphabet = set(receipts.STATUS_ALPHABET)
    assert not alphabet & set("ILOU") and len(alphabet) == 32
    for code in codes:
        groups = code.split("-")
        assert len(code) <= 14 and [len(g) for g in groups] == [4, 4, 4] and set("".join(groups)) <= alphabet
    assert receipts.STATUS_CODE_LENGTH * math.log2(len(alphabet)) >= 50
    assert len(set(codes)) == len(codes)


def test_a_status_code_is_read_in_any_case_width_or_grouping():
    code, stored = receipts.new_status_token()
    plain = code.replace("-", "")
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in plain.lower())
    for typed in (code, code.lower(), plain, f" {code[:4]} {code[5:9]}　{code[10:]} ", full_width,
                  code.replace("-", "ー"), code.replace("-", "－"), code.replace("0", "O").replace("1", "l")):
        assert receipts.token_matches(typed, stored), typed


def test_status_token_is_checked_against_its_hash_only():
    token, stored = receipts.new_status_token()
    assert token.encode() not in stored and token.replace("-", "").encode() not in stored
    assert receipts.token_matches(token, stored)
    wrong = token[:-1] + ("X" if token[-1] != "X" else "Y")
    assert not receipts.token_matches(wrong, stored)
    assert not receipts.token_matches(token + "X", stored)
    assert not receipts.token_matches(None, stored)
    assert not receipts.token_matches(token, None)  # no receipt: hashed and compared all the same
    assert not receipts.token_matches("", receipts.hash_token(""))
    assert receipts.new_status_token()[0] != token


def test_status_only_moves_forward():
    assert receipts.advances("received", "eligible")
    assert receipts.advances("eligible", "scheduled")
    assert receipts.advances("under_review", "eligible")
    assert not receipts.advances("scheduled", "eligible")
    assert not receipts.advances("eligible", "eligible")
    assert not receipts.advances("ineligible", "under_review")
