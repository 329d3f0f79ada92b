"""What services need from the running app, handed to them in one object.

Routes pass ``request.app.state.context`` to services; the CLI and tests
build their own. Time comes from ``clock`` so that tests can drive it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import anyio

from server.photo_store import PhotoStore
from server.playbook_book import Book
from server.settings import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Context:
    settings: Settings
    library: Book
    photo_store: PhotoStore
    # Photos converted at once, each in a worker thread (bounds memory).
    photo_limiter: anyio.CapacityLimiter
    # Wakes the delivery worker after messages were queued in the database.
    wake_delivery: Callable[[], None] = _nothing
    # Tells live streams (the inbox) that events were committed.
    changed: Callable[[], None] = _nothing
    clock: Callable[[], datetime] = field(default=utcnow)

    def today(self) -> date:
        """The date now where the sites are (``settings.timezone``): due dates are days there."""
        return self.clock().astimezone(ZoneInfo(self.settings.timezone)).date()

    def committed(self, queued: int = 0) -> None:
        """After a write is committed: wake the delivery worker if it queued
        messages, and tell the live streams there is something new."""
        if queued:
            self.wake_delivery()
        self.changed()
