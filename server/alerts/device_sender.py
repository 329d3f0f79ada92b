"""Web Push to a person's device: the message encrypted, posted to its push
service, and what the answer means.

Encryption (RFC 8291, aes128gcm) and the VAPID JWT come from the ``webpush``
package; the post is ours. 2xx is sent; 404 and 410 mean the subscription is
gone; 408, 429 and 5xx are tried again after a backoff (or the service's
Retry-After); any other 4xx, or keys that cannot be used, fail the message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from webpush import WebPushSubscription

from server.alerts.lanes import Lane
from server.alerts.outcomes import Outcome
from server.alerts.retry import MAX_ATTEMPTS, Backoff, retry_after
from server.alerts.sending import Bounds, Sender
from server.alerts.vapid import Vapid
from server.models import DeliveryStatus, PushAttempt, PushDelivery


class DeviceSender(Sender):
    """Sends to devices, over a client of its own, signed with ``vapid``."""

    def __init__(
        self,
        vapid: Vapid,
        hosts: tuple[str, ...],
        bounds: Bounds,
        *,
        clock: Callable[[], datetime],
        backoff: Backoff,
    ) -> None:
        super().__init__(hosts, bounds, clock=clock, backoff=backoff)
        self.pusher = vapid.pusher()

    async def _send(self, delivery: PushDelivery, lane: Lane) -> Outcome:
        assert self.client is not None
        started = time.perf_counter()
        status: int | None = None
        error = ""
        response = None
        try:
            refused = await self.refused(delivery.endpoint)
            if refused:
                raise ValueError(refused)
            message = self._encrypt(delivery)
            async with self.slot():
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
        else:  # still pending: tried again at next_attempt_at
            now = self.clock()
            asked = retry_after(response, now) if response is not None else None
            wait = asked if asked is not None else self.backoff(delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
        attempt = PushAttempt(
            delivery=delivery,
            status_code=status,
            error=error,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
        return Outcome(delivery, attempt)

    def _encrypt(self, delivery: PushDelivery) -> tuple[bytes, dict[str, str]]:
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
