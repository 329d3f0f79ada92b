"""Password hashes: argon2id, with a cost that settings may lower for tests.

The cost is written into every hash, so hashes of another cost still verify,
and a login re-hashes a password whose hash used other parameters.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
# Verifying against this keeps a login for an unknown name as slow as a real one.
_dummy_hash = _hasher.hash(secrets.token_hex(16))


def configure(memory_kib: int) -> None:
    """Use ``memory_kib`` of memory per hash (the library's default is 65536)."""
    global _hasher, _dummy_hash
    if memory_kib == _hasher.memory_cost:
        return
    # argon2 needs at least 8 KiB per lane: a low memory cost uses one lane.
    lanes = 4 if memory_kib >= 32 * 1024 else 1
    _hasher = PasswordHasher(memory_cost=memory_kib, parallelism=lanes)
    _dummy_hash = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_nobody(password: str) -> None:
    """Spend the time of a real check, for a username that does not exist."""
    verify_password(_dummy_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A password that is easy to read out and type on a phone."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
