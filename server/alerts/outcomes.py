"""What became of each message, written down: the attempt log, the row's new
state, a gone device's subscription, and a robot's last success or refusal.

Outcomes come from the senders as they finish; the :class:`Recorder` writes
them in batches, one transaction for whatever has come in meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import F
from tortoise.transactions import in_transaction

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

# Outcomes written in one transaction at most.
BATCH = 500
# Seconds the recorder has at shutdown to write what has come in.
SHUTDOWN_GRACE = 5.0


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


class Recorder:
    """Writes outcomes in batches, instead of two writes per message (a fan-out
    to a thousand phones would otherwise queue two thousand commits)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.loop = Loop("push-recorder", self._write_batch)
        self.unwritten = 0  # outcomes put but not yet written down
        # ``None`` in the queue means: write what is there, then stop.
        self._outcomes: asyncio.Queue[Outcome | None] = asyncio.Queue()

    def put(self, outcome: Outcome) -> None:
        """Have ``outcome`` written with the next batch."""
        self.unwritten += 1
        self._outcomes.put_nowait(outcome)

    def start(self) -> None:
        self.loop.start()

    @property
    def alive(self) -> bool:
        return self.loop.alive

    async def stop(self) -> None:
        """Write what has come in, then stop: never cancelled mid-transaction
        unless that takes longer than :data:`SHUTDOWN_GRACE`."""
        self._outcomes.put_nowait(None)
        if not await self.loop.stop(grace=SHUTDOWN_GRACE):
            log.warning("push outcomes not all written at shutdown; they will be resent")

    async def _write_batch(self) -> float | None:
        done = False
        batch = []
        item = await self._outcomes.get()
        while True:
            if item is None:
                done = True
            else:
                batch.append(item)
            if self._outcomes.empty() or len(batch) >= BATCH:
                break
            item = self._outcomes.get_nowait()
        if batch:
            try:
                await record(batch, self.clock())
            except Exception:  # the worker must outlive a bad moment
                # The rows keep their lease and are sent again when it ends.
                log.exception("recording %d push outcomes failed", len(batch))
            finally:
                self.unwritten -= len(batch)
        return None if done else 0
