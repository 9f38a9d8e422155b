from datetime import datetime, timezone

import pytest

from services.intake import receipts


def test_receipt_number_uses_the_japan_date_and_a_valid_check_digit():
    late_evening_utc = datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)  # 25 Nov 01:00 in Japan
    number = receipts.receipt_no(42, late_evening_utc)
    assert number.startswith("PH-261125-0042")
    assert receipts.is_well_formed(number)


@pytest.mark.parametrize("typo", ["PH-261125-00420", "PH-261125-00412", "PH-261152-00421", "ph-261125-00421", "PH-261125-1", ""])
def test_a_mistyped_receipt_number_is_not_well_formed(typo):
    assert not receipts.is_well_formed(typo)


def test_numbers_keep_growing_past_four_digits():
    number = receipts.receipt_no(123456, datetime(2026, 11, 24, tzinfo=timezone.utc))
    assert number.startswith("PH-261124-123456") and receipts.is_well_formed(number)


def test_status_token_is_checked_against_its_hash_only():
    token, stored = receipts.new_status_token()
    assert token.encode() not in stored
    assert receipts.token_matches(token, stored)
    assert not receipts.token_matches(token + "x", stored)
    assert not receipts.token_matches(None, stored)
    assert receipts.new_status_token()[0] != token


def test_status_only_moves_forward():
    assert receipts.advances("received", "eligible")
    assert receipts.advances("eligible", "scheduled")
    assert receipts.advances("under_review", "eligible")
    assert not receipts.advances("scheduled", "eligible")
    assert not receipts.advances("eligible", "eligible")
    assert not receipts.advances("ineligible", "under_review")
