"""Password hashes: argon2id, with a cost that settings may lower for tests.

The cost is written into every hash, so hashes of another cost still verify,
and a login re-hashes a password whose hash used other parameters. A hash
takes about a tenth of a second of CPU and 64 MiB: logins run it in a worker
thread (:func:`check`, :func:`rehash`), a limiter bounding how many at once.
"""

from __future__ import annotations

import secrets

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
# Verifying against this keeps a login for an unknown name as slow as a real
# one. Made at the first such login (in its worker thread), not at import:
# every process (each CLI command, each server start) paid a whole hash.
_dummy_hash: str | None = None


def configure(memory_kib: int) -> None:
    """Use ``memory_kib`` of memory per hash (the library's default is 65536)."""
    global _hasher, _dummy_hash
    if memory_kib == _hasher.memory_cost:
        return
    # argon2 needs at least 8 KiB per lane: a low memory cost uses one lane.
    lanes = 4 if memory_kib >= 32 * 1024 else 1
    _hasher = PasswordHasher(memory_cost=memory_kib, parallelism=lanes)
    _dummy_hash = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_hex(16))
    return _dummy_hash


def _bytes(password: str) -> bytes:
    # A JSON string may hold a lone surrogate, which strict UTF-8 refuses:
    # such a password is merely wrong, not a server error.
    return password.encode("utf-8", "surrogatepass")


def hash_password(password: str) -> str:
    return _hasher.hash(_bytes(password))


def _verify(password_hash: str | None, password: str) -> bool:
    return verify_password(_dummy() if password_hash is None else password_hash, password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, _bytes(password))
    except (VerificationError, InvalidHashError):
        return False


async def check(password_hash: str | None, password: str, limiter: anyio.CapacityLimiter) -> bool:
    """Whether ``password`` matches, verified in a worker thread (at most
    ``limiter``'s tokens at once). ``None`` (no such user) spends the same
    time on a dummy hash and is always False."""
    ok = await anyio.to_thread.run_sync(_verify, password_hash, password, limiter=limiter)
    return ok and password_hash is not None


async def rehash(password: str, limiter: anyio.CapacityLimiter) -> str:
    """:func:`hash_password` in a worker thread."""
    return await anyio.to_thread.run_sync(hash_password, password, limiter=limiter)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A password that is easy to read out and type on a phone."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
