"""Notices between app servers on one PostgreSQL database: LISTEN/NOTIFY.

After a write commits, the server that made it wakes its own live streams
at once (``ctx.changed``); the other servers would see the new events only
at their hub's next poll (0.5 s). With :class:`Notices` each server also
sends ``NOTIFY onsite_events`` on a connection of its own, and LISTENs on
it: another server's notice wakes this server's hub now.

It is only a shortcut. A notice is lost while the connection is down or
being made again, so the hub keeps polling; nothing waits on a notice
alone. SQLite is one server's database: there, no notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from server.db import _libpq_url
from server.loop import Loop

log = logging.getLogger("onsite.notices")

CHANNEL = "onsite_events"


class Notices:
    """One LISTEN connection: :meth:`send` tells the other servers, ``heard``
    is called when another server told (never for this server's own)."""

    def __init__(self, url: str, heard: Callable[[], None], *, retry: float = 5.0) -> None:
        self.url = _libpq_url(url)
        self.heard = heard
        self.retry = retry  # seconds between attempts to connect again
        self._want = asyncio.Event()  # a notice to send (several coalesce)
        self._lost = asyncio.Event()  # the connection ended
        self._connected = asyncio.Event()
        self._pid = 0  # the listening connection's backend
        self.loop = Loop("notices", self._listen)

    @classmethod
    def for_database(cls, url: str, heard: Callable[[], None]) -> Notices | None:
        """Notices for a PostgreSQL ``url``; None for SQLite."""
        if url.startswith(("postgres://", "postgresql://")):
            return cls(url, heard)
        return None

    async def start(self) -> None:
        self.loop.start()

    @property
    def alive(self) -> bool:
        """Its loop runs: started and not ended by an error."""
        return self.loop.alive

    async def stop(self) -> None:
        await self.loop.stop()

    @property
    def connected(self) -> bool:
        """Listening now (while not, the others are heard at the hub's poll)."""
        return self._connected.is_set()

    def send(self) -> None:
        """Events were committed here: tell the other servers (soon, not awaited)."""
        self._want.set()

    async def _listen(self) -> float:
        """Connect and listen until the connection ends; then ``retry`` seconds
        until the next attempt."""
        import asyncpg

        conn = None
        try:
            conn = await asyncpg.connect(self.url, timeout=10)
            self._pid = conn.get_server_pid()
            self._lost.clear()
            conn.add_termination_listener(lambda _conn: self._lost.set())
            await conn.add_listener(CHANNEL, self._on_notice)
            self._connected.set()
            # Events may have come while not listening: the hub looks once.
            self.heard()
            await self._serve(conn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away: poll, and try again
            log.warning("notices between servers paused (%s); polling meanwhile", exc)
        finally:
            self._connected.clear()
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.terminate()
        return self.retry

    def _on_notice(self, _conn: Any, pid: int, _channel: str, _payload: object) -> None:
        if pid != self._pid:  # this server's own were told locally already
            self.heard()

    async def _serve(self, conn: Any) -> None:
        """Send what is asked for, one NOTIFY per burst, until the connection ends."""
        while True:
            want = asyncio.ensure_future(self._want.wait())
            lost = asyncio.ensure_future(self._lost.wait())
            try:
                await asyncio.wait({want, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                want.cancel()
                lost.cancel()
            if self._lost.is_set() or conn.is_closed():
                raise ConnectionError("the notices connection closed")
            self._want.clear()
            await conn.execute(f"NOTIFY {CHANNEL}")
