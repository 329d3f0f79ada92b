"""The delivery worker: claims due push rows, sends them, and writes down what happened.

Encryption (RFC 8291, aes128gcm) and the VAPID JWT come from the ``webpush``
package; delivery is ours, over one shared ``httpx.AsyncClient``. The worker
claims due rows with a lease, sends them with bounded concurrency, retries
429 and 5xx with backoff (honouring Retry-After), deletes subscriptions the
push service says are gone (404, 410), and logs every attempt.

Rows for a work-chat robot (WeCom, DingTalk: :mod:`server.alerts.robots`) go
one at a time per robot, in order, at most 20 a minute, over a client and
slots of their own: a robot that hangs holds one slot for one timeout, and
what waits behind it is put off with it, never sent around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction
from webpush import WebPushSubscription

from server import netcheck
from server.alerts import robots
from server.alerts.queue import TEST_TOPIC
from server.alerts.vapid import Vapid
from server.context import utcnow
from server.loop import Loop
from server.models import (
    AlertChannel,
    DeliveryKind,
    DeliveryStatus,
    PushAttempt,
    PushDelivery,
    PushSubscription,
)

log = logging.getLogger("onsite.push")

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)
PACE_WINDOW = timedelta(seconds=60)
# A send still unanswered after this many seconds gives its slot to the next.
SLOW = 1.0
# Sends open at once, slow ones included (each holds a connection).
OPEN_LIMIT = 64
# At most this many of one person's messages are sent at once.
PER_PERSON = 2
# Claimed and held in memory at most (sending or waiting in a lane).
HELD_LIMIT = 1000


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


@dataclass
class Outcome:
    """What became of one claimed message, for the recorder."""

    delivery: PushDelivery
    # The attempt's log line; None when the message was only put off (a robot's
    # pace, or what waited behind a robot that failed), not tried.
    attempt: PushAttempt | None
    # A robot's delivery: "" when it was sent, else what its service said.
    channel_note: str | None = None


async def record(outcomes: list[Outcome], now: datetime) -> None:
    """Store what happened to each message: the attempt log, the new state, and
    for a robot when it last sent or why it last refused."""
    by_status: dict[DeliveryStatus, list[PushDelivery]] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome.delivery.status, []).append(outcome.delivery)
    async with in_transaction():
        await PushAttempt.bulk_create([o.attempt for o in outcomes if o.attempt is not None])
        for status, deliveries in by_status.items():
            if status == DeliveryStatus.PENDING:
                for d in deliveries:  # each waits its own backoff
                    await PushDelivery.filter(id=d.id).update(
                        attempts=d.attempts, next_attempt_at=d.next_attempt_at, updated_at=now
                    )
                continue
            tried = {o.delivery.id for o in outcomes if o.delivery.status == status and o.attempt}
            untried = [d.id for d in deliveries if d.id not in tried]
            if tried:
                await PushDelivery.filter(id__in=list(tried)).update(
                    status=status, attempts=F("attempts") + 1, updated_at=now
                )
            if untried:  # a robot's message whose channel was removed
                await PushDelivery.filter(id__in=untried).update(status=status, updated_at=now)
        gone = [
            d.endpoint
            for d in by_status.get(DeliveryStatus.GONE, [])
            if d.kind is DeliveryKind.DEVICE
        ]
        if gone:
            await PushSubscription.filter(endpoint__in=gone).delete()
        sent = {o.delivery.channel_id for o in outcomes if o.channel_note == ""}
        if sent:
            await AlertChannel.filter(id__in=list(sent)).update(last_sent_at=now)
        for outcome in outcomes:
            if outcome.channel_note:
                await AlertChannel.filter(id=outcome.delivery.channel_id).update(
                    last_error=outcome.channel_note[:500], last_error_at=now
                )


@dataclass
class Lane:
    """The messages of one recipient as this server sends them: a person's
    devices (``limit`` at once, so one person's dead endpoints cannot take
    every slot), or a work-chat robot (one at a time, in order, paced)."""

    limit: int
    paced: bool = False  # a robot: at most robots.PER_MINUTE a minute
    in_flight: int = 0
    started: deque[datetime] = field(default_factory=deque)  # a robot's last sends
    # A robot is left alone until then: its service said "too fast", or a
    # message to it waits for its retry (nothing newer overtakes it).
    held_until: datetime | None = None
    waiting: deque[PushDelivery] = field(default_factory=deque)

    def free_at(self, now: datetime) -> datetime:
        """When the next message may go: after a hold, and for a robot at most
        ``robots.PER_MINUTE`` started in any minute."""
        while self.started and self.started[0] <= now - PACE_WINDOW:
            self.started.popleft()
        free = now
        if self.paced and len(self.started) >= robots.PER_MINUTE:
            free = self.started[0] + PACE_WINDOW
        if self.held_until and self.held_until > free:
            free = self.held_until
        return free


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


class Deliverer:
    """The worker: claims due deliveries and sends them, a bounded number at once."""

    def __init__(
        self,
        vapid: Vapid,
        *,
        concurrency: int = 8,
        slow: float = SLOW,
        open_limit: int = OPEN_LIMIT,
        timeout: float = 10.0,
        poll: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
        backoff: Backoff = backoff,
        push_hosts: tuple[str, ...] = (),
        channel_hosts: tuple[str, ...] = (),
    ) -> None:
        self.pusher = vapid.pusher()
        # Where a send may go: checked again at send time, as a name may have
        # come to resolve into the server's own networks since it was saved.
        self.push_hosts = push_hosts
        self.channel_hosts = channel_hosts
        self.clock = clock
        self.backoff = backoff
        # Sends at once (a slow one gives its slot back after ``slow``
        # seconds), and connections kept: equal, so no send queues inside
        # httpcore's pool, whose bookkeeping grows with queued x open.
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)
        self.slow = slow
        # Open at once, slow ones included: a bound on connections and memory.
        self.open_limit = open_limit
        self.open = asyncio.Semaphore(open_limit)
        self.timeout = timeout
        self.poll = poll
        self.client: httpx.AsyncClient | None = None
        # Robots: their own client and slots, so a hung one never holds up a push.
        self.robot_client: httpx.AsyncClient | None = None
        self.robot_slots = asyncio.Semaphore(concurrency)
        self.robot_open = asyncio.Semaphore(open_limit)
        self.lanes: dict[tuple[str, object], Lane] = {}
        self.loop = Loop("push-deliverer", self._claim_round)
        self._recording = Loop("push-recorder", self._record_batch)
        self._in_flight: set[asyncio.Task] = set()
        self._outcomes: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self._unrecorded = 0  # outcomes sent but not yet written down
        self._stopping = False  # once set, no lane starts another send

    async def start(self) -> None:
        # Room for every open send (slow ones too), so none queues in the pool;
        # only ``concurrency`` connections are kept between sends.
        limits = httpx.Limits(
            max_connections=self.open_limit, max_keepalive_connections=self.concurrency
        )
        timeout = httpx.Timeout(self.timeout, connect=5.0)
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits)
        self.robot_client = httpx.AsyncClient(timeout=timeout, limits=limits)
        self.loop.start()
        self._recording.start()

    @property
    def alive(self) -> bool:
        """Claiming and recording: both of its loops run (for /healthz)."""
        return self.loop.alive and self._recording.alive

    async def stop(self) -> None:
        """Stop claiming and cancel sends under way: their lease runs out and
        whichever server runs next sends them again."""
        self._stopping = True
        sends = list(self._in_flight)
        for task in sends:
            task.cancel()
        await asyncio.gather(self.loop.stop(), *sends, return_exceptions=True)
        # What was sent is written down before the server stops (never
        # cancelled mid-transaction), so the next server does not send it again.
        self._outcomes.put_nowait(None)
        if not await self._recording.stop(grace=5):
            log.warning("push outcomes not all written at shutdown; they will be resent")
        for client in (self.client, self.robot_client):
            if client:
                await client.aclose()

    @property
    def idle(self) -> bool:
        """Nothing being sent, and every outcome written down."""
        return (
            not self._in_flight
            and self._unrecorded == 0
            and not any(lane.in_flight or lane.waiting for lane in self.lanes.values())
        )

    def kick(self) -> None:
        """Wake the worker now (a report was just made)."""
        self.loop.kick()

    async def _claim_round(self) -> float:
        """Claim what is due and has room, into its lanes; then seconds until
        the next claim (none if there may be more due now)."""
        room = min(200, HELD_LIMIT - self._held())
        claimed: list[PushDelivery] = []
        if room > 0:
            try:
                claimed = await self._claim(limit=room)
            except Exception:  # the worker must outlive a bad moment
                log.exception("claiming push deliveries failed")
        for delivery in claimed:
            self._to_lane(delivery)
        if claimed and len(claimed) == room:
            return 0  # more may be due: go again at once
        return self.poll

    def _held(self) -> int:
        return sum(lane.in_flight + len(lane.waiting) for lane in self.lanes.values())

    async def _claim(self, limit: int) -> list[PushDelivery]:
        """Take due rows in one UPDATE, stamping them with a lease of our own.

        The stamp (lease end plus a random microsecond offset) is both the
        lease, after which a crashed server's rows are due again, and the
        claim token: of several servers, each gets only the rows it stamped.
        """
        now = self.clock()
        due = list(
            await PushDelivery.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")  # ties: as queued (a robot's order)
            .limit(limit)
            .values_list("id", flat=True)
        )
        if not due:
            return []
        stamp = now + LEASE + timedelta(microseconds=random.randrange(1, 999_999))
        await PushDelivery.filter(
            Q(id__in=due) & Q(status=DeliveryStatus.PENDING) & Q(next_attempt_at__lte=now)
        ).update(next_attempt_at=stamp)
        ours = await PushDelivery.filter(id__in=due, next_attempt_at=stamp).prefetch_related(
            "subscription", "channel"
        )
        place = {id_: n for n, id_ in enumerate(due)}
        return sorted(ours, key=lambda d: place[d.id])  # in the order they were due

    async def _send_one(self, delivery: PushDelivery) -> Outcome:
        """Send one message to a device; what happened, for the recorder."""
        assert self.client is not None
        started = time.perf_counter()
        status: int | None = None
        error = ""
        response = None
        try:
            refused = await self._refused(delivery.endpoint, self.push_hosts)
            if refused:
                raise ValueError(refused)
            message = await self._encrypt(delivery)
            async with Slot(self.slots, self.slow):
                response = await self.client.post(
                    delivery.endpoint, content=message[0], headers=message[1]
                )
            status = response.status_code
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        except ValueError as exc:  # keys or an endpoint that cannot be used: never
            error = f"not deliverable: {exc}"[:500]
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
        return Outcome(delivery, attempt)

    def _put(self, outcome: Outcome) -> None:
        self._unrecorded += 1
        self._outcomes.put_nowait(outcome)

    async def _record_batch(self) -> float | None:
        """Write outcomes in batches: one transaction for whatever has come in
        meanwhile, instead of two writes per message (a fan-out to a thousand
        phones would otherwise queue two thousand commits). ``None`` in the
        queue means: write what is there, then stop."""
        done = False
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
        if batch:
            try:
                await record(batch, self.clock())
            except Exception:  # the worker must outlive a bad moment
                # The rows keep their lease and are sent again when it ends.
                log.exception("recording %d push outcomes failed", len(batch))
            finally:
                self._unrecorded -= len(batch)
        return None if done else 0

    def _wake_later(self, when: datetime) -> None:
        delay = max(0.0, (when - self.clock()).total_seconds())
        if delay < self.poll:
            asyncio.get_running_loop().call_later(delay, self.loop.kick)

    @staticmethod
    async def _refused(url: str, allowed: tuple[str, ...]) -> str | None:
        """Why ``url`` must not be called now, or None (an empty list: not checked)."""
        if not allowed:
            return None
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not netcheck.listed(host, parts.port, allowed):
            return f"{host} is no longer an allowed host."
        return await netcheck.private_address(host, allowed)

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

    # --- lanes: a person's devices, a work-chat robot ------------------------------

    def _to_lane(self, delivery: PushDelivery) -> None:
        """Queue a claimed message in its recipient's lane."""
        if DeliveryKind.of(delivery.endpoint) is DeliveryKind.DEVICE:
            sub = delivery.subscription
            key: tuple[str, object] = ("user", sub.user_id) if sub else ("endpoint", delivery.id)
            lane = self.lanes.setdefault(key, Lane(limit=PER_PERSON))
        elif delivery.channel_id is None:  # the channel was removed meanwhile
            delivery.status = DeliveryStatus.GONE
            self._put(Outcome(delivery, None))
            return
        else:
            key = ("robot", delivery.channel_id)
            lane = self.lanes.setdefault(key, Lane(limit=1, paced=True))
        lane.waiting.append(delivery)
        self._pump(key, lane)

    def _pump(self, key: tuple[str, object], lane: Lane) -> None:
        """Start the lane's next messages while it has room and its pace allows;
        put off what cannot go soon, so that no lease runs out while it waits."""
        while not self._stopping and lane.waiting and lane.in_flight < lane.limit:
            now = self.clock()
            free = lane.free_at(now)
            if free > now:
                self._put_off(lane, free)
                break
            delivery = lane.waiting.popleft()
            # Claimed with a lease: one that could run out during a send is let
            # go (another server, or our next claim, takes it up).
            if delivery.next_attempt_at - now < timedelta(seconds=self.timeout + 5):
                self._put_off_one(delivery, now)
                continue
            lane.in_flight += 1
            if lane.paced:
                lane.started.append(now)
            task = asyncio.create_task(self._send_in_lane(delivery, key, lane))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        if not lane.in_flight and not lane.waiting and not lane.paced:
            self.lanes.pop(key, None)  # a person's lane: nothing to remember

    def _put_off(self, lane: Lane, when: datetime) -> None:
        while lane.waiting:
            self._put_off_one(lane.waiting.popleft(), when)
        self._wake_later(when)

    def _put_off_one(self, delivery: PushDelivery, when: datetime) -> None:
        delivery.next_attempt_at = when
        self._put(Outcome(delivery, None))

    async def _send_in_lane(
        self, delivery: PushDelivery, key: tuple[str, object], lane: Lane
    ) -> None:
        try:
            if lane.paced:
                async with self.robot_open:
                    outcome = await self._post_to_robot(delivery, lane)
            else:
                async with self.open:
                    outcome = await self._send_one(delivery)
            self._put(outcome)
        finally:
            lane.in_flight -= 1
        if lane.paced and delivery.status == DeliveryStatus.PENDING:
            # Tried and to be tried again: what waits behind it waits as long,
            # so the robot's messages keep their order.
            self._put_off(lane, delivery.next_attempt_at)
        self._pump(key, lane)
        self.loop.kick()  # room to claim more

    async def _post_to_robot(self, delivery: PushDelivery, robot: Lane) -> Outcome:
        """Send one message to its robot, signed at send time (DingTalk 加签)."""
        assert self.robot_client is not None
        channel = delivery.channel  # prefetched with the claim
        assert channel is not None  # checked in _to_robot
        started = time.perf_counter()
        status: int | None = None
        error = ""
        note: str | None = None
        delivery.attempts += 1
        now = self.clock()
        if not channel.active and delivery.topic != TEST_TOPIC:
            # Switched off after the message was queued: not sent.
            delivery.status = DeliveryStatus.GONE
            attempt = PushAttempt(delivery=delivery, error="channel inactive", duration_ms=0)
            return Outcome(delivery, attempt)
        wait: float | None = None
        limited = False
        refused = await self._refused(channel.webhook_url, self.channel_hosts)
        if refused:
            delivery.status = DeliveryStatus.FAILED
            attempt = PushAttempt(delivery=delivery, error=refused[:500], duration_ms=0)
            return Outcome(delivery, attempt, refused)
        try:
            async with Slot(self.robot_slots, self.slow):
                response = await self.robot_client.post(
                    robots.signed_url(channel.webhook_url, channel.secret, now),
                    content=robots.body(delivery.payload),
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
            status = response.status_code
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            response = None
        if response is None:
            pass  # network: try again later
        elif status == 200:
            answer = robots.read_answer(channel.kind, response)
            error = answer.error
            if answer.outcome == "sent":
                delivery.status = DeliveryStatus.SENT
                note = ""
            elif answer.outcome == "rate_limited":
                limited = True
                held = now + robots.HOLD[channel.kind]
                robot.held_until = held
                wait = (held - now).total_seconds()
            elif answer.outcome == "refused":
                delivery.status = DeliveryStatus.FAILED
                note = answer.error
        elif status == 429:
            limited = True
            wait = retry_after(response, now)
            error = f"HTTP 429: {response.text[:200]}"
        elif status is not None and 400 <= status < 500 and status != 408:
            delivery.status = DeliveryStatus.FAILED
            error = f"HTTP {status}: {response.text[:200]}"
            note = error
        else:
            wait = retry_after(response, now)
            error = error or f"HTTP {status}"
        # A robot's "too fast" is waited out however often it comes: the
        # message is queued, not dropped. Anything else has MAX_ATTEMPTS.
        if delivery.status == DeliveryStatus.PENDING:
            if limited:
                delivery.attempts -= 1  # logged, but not counted against it
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.FAILED
                note = f"gave up after {delivery.attempts} attempts: {error}"[:500]
            else:
                if wait is None:
                    wait = self.backoff(max(delivery.attempts, 1))
                delivery.next_attempt_at = now + timedelta(seconds=wait)
                # Nothing newer goes to this robot before this one is retried:
                # its messages keep their order, and a hung robot is not
                # tried again with every new report.
                if robot.held_until is None or robot.held_until < delivery.next_attempt_at:
                    robot.held_until = delivery.next_attempt_at
        log.info(
            "channel %s (%s) message %s: %s %s",
            channel.id,
            channel.kind.value,
            delivery.id,
            delivery.status.value,
            error,
        )
        attempt = PushAttempt(
            delivery=delivery,
            status_code=status,
            error=error[:500],
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
        return Outcome(delivery, attempt, note)
