"""Operator password hashes: argon2id (argon2-cffi), and the scrypt hashes of the first accounts,
still verified so that their owners can log in once more and be moved to argon2id."""
import asyncio
import base64
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

# RFC 9106's second recommended option: argon2id, 64 MiB, 3 passes, 4 lanes, 16-byte salt,
# 32-byte hash; about 0.1 s on one of the desk's cores
HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
LEGACY_SCHEME = "scrypt$"
# each hash takes 64 MiB: at most two at once, whatever a flood of log-ins asks for
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="password-hash")


def hash_password(password: str) -> str:
    """`$argon2id$v=19$m=65536,t=3,p=4$salt$hash`: the parameters travel with the hash."""
    return HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """False for a wrong password and for a stored value that is not one of our hashes."""
    if stored.startswith(LEGACY_SCHEME):
        return _verify_scrypt(password, stored)
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """A scrypt hash, or an argon2 hash with weaker parameters than today's."""
    return stored.startswith(LEGACY_SCHEME) or HASHER.check_needs_rehash(stored)


async def hash_in_background(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


async def verify_in_background(password: str, stored: str) -> bool:
    """Verify without blocking the event loop (hashing takes about 0.1 s)."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, verify_password, password, stored)


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    # an unknown login costs one verification too, so response time does not tell which logins exist
    return hash_password("not a password of anyone: 0f3c9d")


def _verify_scrypt(password: str, stored: str) -> bool:
    """`scrypt$n$r$p$salt_b64$hash_b64`, as the console wrote them before argon2id."""
    try:
        _, n, r, p, salt, expected = stored.split("$")
        expected_raw = base64.b64decode(expected, validate=True)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt, validate=True), n=int(n), r=int(r), p=int(p),
            dklen=len(expected_raw), maxmem=64 * 1024 * 1024,
        )
    except ValueError:  # wrong shape, bad base64, or parameters scrypt refuses
        return False
    return hmac.compare_digest(actual, expected_raw)
