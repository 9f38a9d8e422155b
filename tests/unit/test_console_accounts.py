"""Operator password hashes: scrypt, salted per hash, checked in constant time."""
import base64

from services.console.accounts import hash_password, normalize_login, verify_password


def test_the_right_password_verifies():
    stored = hash_password("correct horse battery")
    assert verify_password("correct horse battery", stored)


def test_a_wrong_password_is_refused():
    stored = hash_password("correct horse battery")
    assert not verify_password("correct horse batterx", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt():
    first, second = hash_password("same password 1"), hash_password("same password 1")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password("same password 1", first) and verify_password("same password 1", second)


def test_format_names_scheme_parameters_salt_and_hash():
    scheme, n, r, p, salt, key = hash_password("パスワード１２３４５６７８").split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert len(base64.b64decode(salt, validate=True)) == 16
    assert len(base64.b64decode(key, validate=True)) == 32


def test_non_ascii_passwords_work():
    stored = hash_password("パスワード１２３４５６７８")
    assert verify_password("パスワード１２３４５６７８", stored)
    assert not verify_password("パスワード12345678", stored)


def test_values_that_are_not_our_hashes_never_verify():
    good = hash_password("correct horse battery")
    for stored in ("", "plain", "bcrypt$1$2$3$aa$bb", good.replace("scrypt", "md5", 1),
                   "scrypt$16384$8$1$not-base64!$AAAA", "scrypt$x$8$1$AAAA$AAAA",
                   "scrypt$1099511627776$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"):
        assert not verify_password("correct horse battery", stored)


def test_logins_ignore_case_width_and_surrounding_space():
    assert normalize_login(" Ｔａｎａｋａ ") == "tanaka"
