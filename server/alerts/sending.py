"""What the two senders share: a client of their own (over one TLS context for
the process), a bound on sends at once that a slow send gives back, and the
host check at send time.

Web Push to devices (:mod:`server.alerts.device_sender`) and messages to
robots (:mod:`server.alerts.robot_sender`) each have a :class:`Sender`, so a
hung robot never holds up a push.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from server import netcheck
from server.alerts.lanes import Lane
from server.alerts.outcomes import Outcome
from server.alerts.retry import Backoff
from server.models import PushDelivery

# A send still unanswered after this many seconds gives its slot to the next.
SLOW = 1.0
# Sends open at once, slow ones included (each holds a connection).
OPEN_LIMIT = 64


@functools.cache
def tls() -> ssl.SSLContext:
    """The TLS settings of every delivery client, made once per process.

    Loading the CA bundle is most of what making an ``httpx.AsyncClient``
    costs (about 30 ms, at every start, for each of the two senders); one
    context, shared, loads it once. It is httpx's own default (certifi's
    bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set), so what is trusted
    is unchanged.
    """
    return httpx.create_ssl_context()


class Slot:
    """One of a bounded number of sends at once, given back early when its
    send turns out slow: a hung endpoint then keeps only its own connection
    (up to the timeout), not a slot the next message needs."""

    def __init__(self, semaphore: asyncio.Semaphore, slow: float) -> None:
        self.semaphore = semaphore
        self.slow = slow
        self._released = False
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> Slot:
        await self.semaphore.acquire()
        self._timer = asyncio.get_running_loop().call_later(self.slow, self._release)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._timer:
            self._timer.cancel()
        self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self.semaphore.release()


@dataclass(frozen=True)
class Bounds:
    """How much a sender has under way, and how long it waits."""

    # Sends at once (a slow one gives its slot back after ``slow`` seconds),
    # and connections kept: equal, so no send queues inside httpcore's pool,
    # whose bookkeeping grows with queued x open.
    concurrency: int = 8
    slow: float = SLOW
    # Open at once, slow ones included: a bound on connections and memory.
    open_limit: int = OPEN_LIMIT
    timeout: float = 10.0  # seconds for an answer (5 to connect)


class Sender:
    """Sends one claimed message and says what became of it (:meth:`send`);
    subclasses know the service."""

    def __init__(
        self,
        hosts: tuple[str, ...],
        bounds: Bounds,
        *,
        clock: Callable[[], datetime],
        backoff: Backoff,
    ) -> None:
        # Where a send may go: checked again at send time, as a name may have
        # come to resolve into the server's own networks since it was saved.
        self.hosts = hosts
        self.bounds = bounds
        self.clock = clock
        self.backoff = backoff
        self.slots = asyncio.Semaphore(bounds.concurrency)
        self.open = asyncio.Semaphore(bounds.open_limit)
        self.client: httpx.AsyncClient | None = None

    def start(self) -> None:
        """Open the client."""
        # Room for every open send (slow ones too), so none queues in the pool;
        # only ``concurrency`` connections are kept between sends.
        limits = httpx.Limits(
            max_connections=self.bounds.open_limit,
            max_keepalive_connections=self.bounds.concurrency,
        )
        timeout = httpx.Timeout(self.bounds.timeout, connect=5.0)
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits, verify=tls())

    async def aclose(self) -> None:
        if self.client:
            await self.client.aclose()

    async def send(self, delivery: PushDelivery, lane: Lane) -> Outcome:
        """Send ``delivery`` (one of ``lane``'s): what happened, for the recorder."""
        async with self.open:
            return await self._send(delivery, lane)

    async def _send(self, delivery: PushDelivery, lane: Lane) -> Outcome:
        raise NotImplementedError

    def slot(self) -> Slot:
        """A slot to hold while the request is sent and answered."""
        return Slot(self.slots, self.bounds.slow)

    async def refused(self, url: str) -> str | None:
        """Why ``url`` must not be called now, or None (no hosts listed: not checked)."""
        if not self.hosts:
            return None
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not netcheck.listed(host, parts.port, self.hosts):
            return f"{host} is no longer an allowed host."
        return await netcheck.private_address(host, self.hosts)
