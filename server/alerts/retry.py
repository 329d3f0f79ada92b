"""When a message is tried again: jittered backoff, the service's Retry-After,
and how many attempts before it is given up."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

# Attempts before a message is failed (a robot's "too fast" is not counted).
MAX_ATTEMPTS = 8

# Seconds to wait before attempt ``n + 1``; passed in, so tests step over it.
Backoff = Callable[[int], float]


def backoff(attempt: int) -> float:
    """Jittered exponential backoff: about 2, 4, 8 ... seconds, at most an hour."""
    return min(3600.0, 2.0**attempt) * (0.5 + random.random())


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    """Seconds the push service asked us to wait (Retry-After), if it said."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return min(float(value), 3600.0)
    if value:
        with contextlib.suppress(TypeError, ValueError):
            return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    return None
