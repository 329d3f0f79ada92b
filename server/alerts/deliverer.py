"""The delivery worker: claims due push rows, sends them, and writes down what happened.

The worker claims due rows with a lease (several servers may share the
database), puts each in its recipient's lane (:mod:`server.alerts.lanes`),
and starts sends while a lane has room: to devices over Web Push
(:mod:`server.alerts.device_sender`), to work-chat robots over their webhook
(:mod:`server.alerts.robot_sender`), each sender with a client and bounded
slots of its own. Retries follow :mod:`server.alerts.retry`; the
:class:`~server.alerts.outcomes.Recorder` writes every attempt and each
row's new state in batches.

Rows for a robot (WeCom, DingTalk: :mod:`server.alerts.robots`) go one at a
time per robot, in order, at most 20 a minute: a robot that hangs holds one
slot for one timeout, and what waits behind it is put off with it, never
sent around it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from tortoise.expressions import Q

from server.alerts.device_sender import DeviceSender
from server.alerts.lanes import Lane, LaneKey, key_of, new_lane
from server.alerts.outcomes import Outcome, Recorder
from server.alerts.retry import Backoff, backoff
from server.alerts.robot_sender import RobotSender
from server.alerts.sending import OPEN_LIMIT, SLOW, Bounds
from server.alerts.vapid import Vapid
from server.context import utcnow
from server.loop import Loop
from server.models import DeliveryStatus, PushDelivery

log = logging.getLogger("onsite.push")

LEASE = timedelta(seconds=60)
# Claimed and held in memory at most (sending or waiting in a lane).
HELD_LIMIT = 1000
# Claimed in one round at most.
CLAIM_LIMIT = 200


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
        bounds = Bounds(concurrency=concurrency, slow=slow, open_limit=open_limit, timeout=timeout)
        self.device_sender = DeviceSender(vapid, push_hosts, bounds, clock=clock, backoff=backoff)
        self.robot_sender = RobotSender(channel_hosts, bounds, clock=clock, backoff=backoff)
        self.clock = clock
        self.timeout = timeout
        self.poll = poll
        self.lanes: dict[LaneKey, Lane] = {}
        self.loop = Loop("push-deliverer", self._claim_round)
        self.recorder = Recorder(clock)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False  # once set, no lane starts another send

    async def start(self) -> None:
        self.device_sender.start()
        self.robot_sender.start()
        self.loop.start()
        self.recorder.start()

    @property
    def alive(self) -> bool:
        """Claiming and recording: both of its loops run (for /healthz)."""
        return self.loop.alive and self.recorder.alive

    async def stop(self) -> None:
        """Stop claiming and cancel sends under way: their lease runs out and
        whichever server runs next sends them again."""
        self._stopping = True
        sends = list(self._in_flight)
        for task in sends:
            task.cancel()
        await asyncio.gather(self.loop.stop(), *sends, return_exceptions=True)
        # What was sent is written down before the server stops, so the next
        # server does not send it again.
        await self.recorder.stop()
        await self.device_sender.aclose()
        await self.robot_sender.aclose()

    @property
    def idle(self) -> bool:
        """Nothing being sent, and every outcome written down."""
        return (
            not self._in_flight
            and self.recorder.unwritten == 0
            and not any(lane.in_flight or lane.waiting for lane in self.lanes.values())
        )

    def kick(self) -> None:
        """Wake the worker now (a report was just made)."""
        self.loop.kick()

    async def _claim_round(self) -> float:
        """Claim what is due and has room, into its lanes; then seconds until
        the next claim (none if there may be more due now)."""
        room = min(CLAIM_LIMIT, HELD_LIMIT - self._held())
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

    def _wake_later(self, when: datetime) -> None:
        delay = max(0.0, (when - self.clock()).total_seconds())
        if delay < self.poll:
            asyncio.get_running_loop().call_later(delay, self.loop.kick)

    # --- lanes: a person's devices, a work-chat robot ------------------------------

    def _to_lane(self, delivery: PushDelivery) -> None:
        """Queue a claimed message in its recipient's lane."""
        key = key_of(delivery)
        if key is None:  # a robot's message whose channel was removed meanwhile
            delivery.status = DeliveryStatus.GONE
            self.recorder.put(Outcome(delivery, None))
            return
        lane = self.lanes.get(key)
        if lane is None:
            lane = self.lanes[key] = new_lane(key)
        lane.waiting.append(delivery)
        self._pump(key, lane)

    def _pump(self, key: LaneKey, lane: Lane) -> None:
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
        self.recorder.put(Outcome(delivery, None))

    async def _send_in_lane(self, delivery: PushDelivery, key: LaneKey, lane: Lane) -> None:
        sender = self.robot_sender if lane.paced else self.device_sender
        try:
            self.recorder.put(await sender.send(delivery, lane))
        finally:
            lane.in_flight -= 1
        if delivery.status == DeliveryStatus.PENDING:  # tried, and to be tried again
            if lane.paced:
                # What waits behind it waits as long, so the robot's messages
                # keep their order.
                self._put_off(lane, delivery.next_attempt_at)
            else:
                self._wake_later(delivery.next_attempt_at)
        self._pump(key, lane)
        self.loop.kick()  # room to claim more
