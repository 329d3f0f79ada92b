"""The delivery worker: claims due push rows, sends them, and writes down what happened.

Encryption (RFC 8291, aes128gcm) and the VAPID JWT come from the ``webpush``
package; delivery is ours, over one shared ``httpx.AsyncClient``. The worker
claims due rows with a lease, sends them with bounded concurrency, retries
429 and 5xx with backoff (honouring Retry-After), deletes subscriptions the
push service says are gone (404, 410), and logs every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction
from webpush import WebPushSubscription

from server.context import utcnow
from server.models import DeliveryStatus, PushAttempt, PushDelivery, PushSubscription
from server.push.vapid import Vapid

log = logging.getLogger("onsite.push")

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)


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


async def record(outcomes: list[tuple[PushDelivery, PushAttempt]], now: datetime) -> None:
    """Store what happened to each message: the attempt log and the new state."""
    by_status: dict[DeliveryStatus, list[PushDelivery]] = {}
    for delivery, _ in outcomes:
        by_status.setdefault(delivery.status, []).append(delivery)
    async with in_transaction():
        await PushAttempt.bulk_create([attempt for _, attempt in outcomes])
        for status, deliveries in by_status.items():
            if status == DeliveryStatus.PENDING:
                for d in deliveries:  # each waits its own backoff
                    await PushDelivery.filter(id=d.id).update(
                        attempts=d.attempts, next_attempt_at=d.next_attempt_at, updated_at=now
                    )
                continue
            await PushDelivery.filter(id__in=[d.id for d in deliveries]).update(
                status=status, attempts=F("attempts") + 1, updated_at=now
            )
        gone = [d.endpoint for d in by_status.get(DeliveryStatus.GONE, [])]
        if gone:
            await PushSubscription.filter(endpoint__in=gone).delete()


class Deliverer:
    """The worker: claims due deliveries and sends them, a bounded number at once."""

    def __init__(
        self,
        vapid: Vapid,
        *,
        concurrency: int = 8,
        timeout: float = 10.0,
        poll: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
        backoff: Backoff = backoff,
    ) -> None:
        self.pusher = vapid.pusher()
        self.clock = clock
        self.backoff = backoff
        # Sends at once, and connections kept: equal, so no send queues inside
        # httpcore's pool, whose bookkeeping grows with queued x open.
        self.concurrency = concurrency
        self.semaphore = asyncio.Semaphore(concurrency)
        self.timeout = timeout
        self.poll = poll
        self.wake = asyncio.Event()
        self.client: httpx.AsyncClient | None = None
        self._task: asyncio.Task | None = None
        self._recording: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._outcomes: asyncio.Queue[tuple[PushDelivery, PushAttempt] | None] = asyncio.Queue()
        self._unrecorded = 0  # outcomes sent but not yet written down

    async def start(self) -> None:
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout, connect=5.0),
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
        )
        self._task = asyncio.create_task(self._run(), name="push-deliverer")
        self._recording = asyncio.create_task(self._recorder(), name="push-recorder")

    async def stop(self) -> None:
        """Stop claiming and cancel sends under way: their lease runs out and
        whichever server runs next sends them again."""
        tasks = [t for t in (self._task, *self._in_flight) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # What was sent is written down before the server stops (never
        # cancelled mid-transaction), so the next server does not send it again.
        if self._recording:
            self._outcomes.put_nowait(None)
            try:
                await asyncio.wait_for(self._recording, timeout=5)
            except TimeoutError:
                log.warning("push outcomes not all written at shutdown; they will be resent")
        if self.client:
            await self.client.aclose()

    @property
    def idle(self) -> bool:
        """Nothing being sent, and every outcome written down."""
        return not self._in_flight and self._unrecorded == 0

    def kick(self) -> None:
        """Wake the worker now (a report was just made)."""
        self.wake.set()

    async def _run(self) -> None:
        in_flight = self._in_flight
        while True:
            # Cleared before the claim: a kick that comes while it runs is
            # kept for the wait below, not lost until the next poll.
            self.wake.clear()
            try:
                claimed = await self._claim(limit=200)
            except Exception:  # the worker must outlive a bad moment
                log.exception("claiming push deliveries failed")
                claimed = []
            for delivery in claimed:
                await self.semaphore.acquire()
                task = asyncio.create_task(self._send_one(delivery))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                task.add_done_callback(lambda _t: self.semaphore.release())
            if len(claimed) == 200:
                continue  # more are due: go again at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll)

    async def _claim(self, limit: int) -> list[PushDelivery]:
        """Take due rows in one UPDATE, stamping them with a lease of our own.

        The stamp (lease end plus a random microsecond offset) is both the
        lease, after which a crashed server's rows are due again, and the
        claim token: of several servers, each gets only the rows it stamped.
        """
        now = self.clock()
        due = list(
            await PushDelivery.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .limit(limit)
            .values_list("id", flat=True)
        )
        if not due:
            return []
        stamp = now + LEASE + timedelta(microseconds=random.randrange(1, 999_999))
        await PushDelivery.filter(
            Q(id__in=due) & Q(status=DeliveryStatus.PENDING) & Q(next_attempt_at__lte=now)
        ).update(next_attempt_at=stamp)
        return await PushDelivery.filter(id__in=due, next_attempt_at=stamp).prefetch_related(
            "subscription"
        )

    async def _send_one(self, delivery: PushDelivery) -> None:
        """Send one message; what happened goes to the recorder (below)."""
        assert self.client is not None
        started = time.perf_counter()
        status: int | None = None
        error = ""
        response = None
        try:
            message = await self._encrypt(delivery)
            response = await self.client.post(
                delivery.endpoint, content=message[0], headers=message[1]
            )
            status = response.status_code
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        except ValueError as exc:  # keys that cannot be used: never deliverable
            error = f"bad subscription keys: {exc}"[:500]
            delivery.status = DeliveryStatus.FAILED
        delivery.attempts += 1
        if delivery.status == DeliveryStatus.FAILED:
            pass  # unusable keys, decided above: nothing to retry
        elif status is not None and 200 <= status < 300:
            delivery.status = DeliveryStatus.SENT
        elif status in (404, 410):
            delivery.status = DeliveryStatus.GONE
        elif delivery.attempts >= MAX_ATTEMPTS or (
            status is not None and 400 <= status < 500 and status not in (408, 429)
        ):
            delivery.status = DeliveryStatus.FAILED
        else:
            now = self.clock()
            asked = retry_after(response, now) if response is not None else None
            wait = asked if asked is not None else self.backoff(delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
            self._wake_later(delivery.next_attempt_at)
        attempt = PushAttempt(
            delivery=delivery,
            status_code=status,
            error=error,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
        self._unrecorded += 1
        self._outcomes.put_nowait((delivery, attempt))

    async def _recorder(self) -> None:
        """Write outcomes in batches: one transaction for whatever has come in
        meanwhile, instead of two writes per message (a fan-out to a thousand
        phones would otherwise queue two thousand commits). ``None`` in the
        queue means: write what is there, then stop."""
        done = False
        while not done:
            batch = []
            item = await self._outcomes.get()
            while True:
                if item is None:
                    done = True
                else:
                    batch.append(item)
                if self._outcomes.empty() or len(batch) >= 500:
                    break
                item = self._outcomes.get_nowait()
            if not batch:
                continue
            try:
                await record(batch, self.clock())
            except Exception:  # the worker must outlive a bad moment
                # The rows keep their lease and are sent again when it ends.
                log.exception("recording %d push outcomes failed", len(batch))
            finally:
                self._unrecorded -= len(batch)

    def _wake_later(self, when: datetime) -> None:
        delay = max(0.0, (when - self.clock()).total_seconds())
        if delay < self.poll:
            asyncio.get_running_loop().call_later(delay, self.wake.set)

    async def _encrypt(self, delivery: PushDelivery) -> tuple[bytes, dict[str, str]]:
        sub = delivery.subscription  # prefetched with the claim
        if sub is None:  # unsubscribed (or gone) since the message was queued
            raise ValueError("the subscription was removed")
        subscription = WebPushSubscription.model_validate(
            {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        )
        # Encryption (ECDH, HKDF, AES-GCM, the JWT) is ~0.3 ms of CPU: done
        # here. Handing it to a thread cost more than it saved: the thread and
        # the event loop fought over the GIL, and a fan-out took twice as long
        # (bench/push.py).
        message = self.pusher.get(delivery.payload, subscription)
        headers = {
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": message.headers["authorization"],
            # Set here, per message, never through the shared WebPush instance.
            "TTL": str(delivery.ttl_seconds),
            "Urgency": delivery.urgency,
        }
        if delivery.topic:
            headers["Topic"] = delivery.topic
        return message.encrypted, headers
