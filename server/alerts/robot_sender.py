"""A message to a work-chat robot: signed at send time (DingTalk 加签), posted
to its webhook, and the service's answer read.

Sent is 200 with errcode 0. "Too fast" (the service's errcode, or HTTP 429)
holds the robot's lane and is waited out however often it comes; busy, 408,
5xx and network errors are tried again after a backoff, up to
``MAX_ATTEMPTS``; a refusal (another errcode, another 4xx) fails the message
and is shown on the channel. A retry holds back what waits behind it, so the
robot's messages keep their order.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import httpx

from server.alerts import robots
from server.alerts.lanes import Lane
from server.alerts.outcomes import Outcome
from server.alerts.queue import TEST_TOPIC
from server.alerts.retry import MAX_ATTEMPTS, retry_after
from server.alerts.sending import Sender
from server.models import DeliveryStatus, PushAttempt, PushDelivery

log = logging.getLogger("onsite.push")


class RobotSender(Sender):
    """Sends to robots, over a client of its own, so a hung one never holds up a push."""

    async def _send(self, delivery: PushDelivery, robot: Lane) -> Outcome:
        assert self.client is not None
        channel = delivery.channel  # prefetched with the claim
        assert channel is not None  # checked when it was put in its lane
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
        refused = await self.refused(channel.webhook_url)
        if refused:
            delivery.status = DeliveryStatus.FAILED
            attempt = PushAttempt(delivery=delivery, error=refused[:500], duration_ms=0)
            return Outcome(delivery, attempt, refused)
        try:
            async with self.slot():
                response = await self.client.post(
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
