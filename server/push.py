"""Web Push: VAPID keys, who is told what, and a delivery worker that survives.

Encryption (RFC 8291, aes128gcm) and the VAPID JWT come from the ``webpush``
package; delivery is ours, over one shared ``httpx.AsyncClient``. Every
message is a ``PushDelivery`` row first, so pending deliveries survive a
restart; the worker claims due rows with a lease, sends them with bounded
concurrency, retries 429 and 5xx with backoff (honouring Retry-After),
deletes subscriptions the push service says are gone (404, 410), and logs
every attempt.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction
from webpush import WebPush, WebPushSubscription
from webpush.vapid import VAPID

from server.models import (
    DeliveryStatus,
    PushAttempt,
    PushDelivery,
    PushSubscription,
    Report,
    Role,
    Severity,
    User,
)

log = logging.getLogger("onsite.push")

# TTL by severity, in seconds: how long a push service keeps an alert for a
# phone that is off. Never 0 (the webpush package's default), which drops
# the alert for any phone not reachable at that instant.
TTL = {
    Severity.CRITICAL: 24 * 3600,
    Severity.HIGH: 12 * 3600,
    Severity.MEDIUM: 6 * 3600,
    Severity.LOW: 2 * 3600,
}
URGENCY = {
    Severity.CRITICAL: "high",
    Severity.HIGH: "high",
    Severity.MEDIUM: "normal",
    Severity.LOW: "low",
}
MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)
MAX_PAYLOAD = 3000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _OriginVAPID(VAPID):
    """VAPID whose ``aud`` is the endpoint's full origin, port included, and
    whose token is signed once per push service, not once per message.

    webpush 1.0.6 writes ``scheme://host`` and drops a port, which RFC 8292
    (the audience is the origin of the push resource) does not allow. A
    token is reused until an hour before it expires, as RFC 8292 section 2
    allows; a fan-out to a thousand phones at one push service signs once.
    """

    _tokens: dict[tuple[str, str], tuple[float, str]]

    def get_authorization_header(self, endpoint: Any, subscriber: Any, expiration: int) -> str:
        parts = urlsplit(str(endpoint))
        audience = f"{parts.scheme}://{parts.netloc}"
        tokens = self.__dict__.setdefault("_tokens", {})
        now = time.time()
        cached = tokens.get((audience, str(subscriber)))
        if cached and cached[0] - now > 3600:
            return cached[1]
        exp = int(now) + expiration
        token = jwt.encode(
            {
                "aud": audience,
                "exp": exp,
                "sub": subscriber
                if str(subscriber).startswith(("mailto:", "https:"))
                else f"mailto:{subscriber}",
            },
            key=self.private_key,
            algorithm="ES256",
        )
        header = f"vapid t={token}, k={self.get_application_server_key(self.public_key)}"
        tokens[(audience, str(subscriber))] = (exp, header)
        return header


@dataclass(frozen=True)
class Vapid:
    private_pem: bytes
    public_pem: bytes
    subject: str

    @property
    def application_server_key(self) -> str:
        """The public key as browsers want it: base64url of the uncompressed point."""
        key = serialization.load_pem_public_key(self.public_pem)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return _b64url(
            key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def pusher(self) -> WebPush:
        # ttl is set per message in our headers; the instance's is never used.
        wp = WebPush(
            private_key=self.private_pem,
            public_key=self.public_pem,
            subscriber=self.subject,
            ttl=60,
            expiration=12 * 3600,
        )
        wp.vapid = _OriginVAPID(private_key=self.private_pem, public_key=self.public_pem)
        return wp


def load_vapid(data_dir: Path, private_pem: str = "", subject: str = "") -> Vapid:
    """The VAPID key pair: from settings, or made once and kept in the data dir (0600)."""
    subject = subject or "mailto:onsite@localhost"
    if private_pem:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    else:
        path = data_dir / "vapid_private.pem"
        if not path.exists():
            new = ec.generate_private_key(ec.SECP256R1())
            pem = new.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(pem)
            except FileExistsError:
                pass  # another process made it first
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Vapid(
        private_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public_pem=key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        subject=subject,
    )


# --- who is told what ---------------------------------------------------------

_TEXT = {
    "zh-CN": {
        "new": "新事件：{title}",
        "assigned": "派单：{title}",
        "body": "{site} · {location}",
        "test": "测试通知",
        "test_body": "推送通知工作正常。",
    },
    "en": {
        "new": "New incident: {title}",
        "assigned": "Assigned to you: {title}",
        "body": "{site} · {location}",
        "test": "Test notification",
        "test_body": "Push notifications work.",
    },
}


def payload(kind: str, report: Report, title: dict[str, str], site: str, lang: str) -> dict:
    text = _TEXT.get(lang, _TEXT["zh-CN"])
    body = text["body"].format(site=site, location=report.location_text or "—")
    message = {
        "title": text[kind].format(title=title.get(lang) or title["zh-CN"]),
        "body": body[:300],
        "url": f"/reports/{report.id}",
        "report_id": str(report.id),
        "severity": report.severity.value,
        "kind": kind,
    }
    return message


async def enqueue_for_report(
    report: Report, kind: str, recipients: list[User], title: dict[str, str], site_name: str
) -> int:
    """A delivery row per subscription of ``recipients``: the durable outbox."""
    subs = await PushSubscription.filter(user_id__in=[u.id for u in recipients])
    return await _queue(
        subs,
        lambda sub: payload(kind, report, title, site_name, sub.language),
        report=report,
        urgency=URGENCY[report.severity],
        ttl=TTL[report.severity],
        # One Topic per report: a newer alert replaces a stale one that is
        # still waiting at the push service.
        topic=report.id.hex[:32],
    )


async def enqueue_test(user: User) -> int:
    """A test notification to every device of ``user``, in each device's language."""

    def message(sub: PushSubscription) -> dict:
        text = _TEXT.get(sub.language, _TEXT["zh-CN"])
        return {
            "title": text["test"],
            "body": text["test_body"],
            "url": "/me",
            "report_id": None,
            "severity": "low",
            "kind": "test",
        }

    subs = await PushSubscription.filter(user_id=user.id)
    return await _queue(
        subs, message, report=None, urgency="normal", ttl=TTL[Severity.LOW], topic="test"
    )


async def _queue(
    subs: list[PushSubscription],
    message,
    *,
    report: Report | None,  # noqa: ANN001
    urgency: str,
    ttl: int,
    topic: str,
) -> int:
    now = datetime.now(UTC)
    rows = [
        PushDelivery(
            subscription=sub,
            report=report,
            endpoint=sub.endpoint,
            payload=message(sub),
            urgency=urgency,
            ttl_seconds=ttl,
            topic=topic,
            next_attempt_at=now,
        )
        for sub in subs
    ]
    if rows:
        await PushDelivery.bulk_create(rows)
    return len(rows)


async def notify_new_report(report: Report, title: dict[str, str]) -> int:
    """Tell the supervisors of the report's site about it."""
    await report.fetch_related("site")
    supervisors = await User.filter(role=Role.SUPERVISOR, is_active=True, sites__id=report.site_id)  # type: ignore[attr-defined]
    return await enqueue_for_report(report, "new", supervisors, title, report.site.name)


async def notify_assignment(report: Report, technician: User, title: dict[str, str]) -> int:
    await report.fetch_related("site")
    return await enqueue_for_report(report, "assigned", [technician], title, report.site.name)


# --- delivery -----------------------------------------------------------------


def retry_after(response: httpx.Response, attempt: int) -> float:
    """Seconds to wait: the service's Retry-After, else jittered exponential backoff."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return min(float(value), 3600.0)
    if value:
        with contextlib.suppress(TypeError, ValueError):
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    return backoff(attempt)


def backoff(attempt: int) -> float:
    return min(3600.0, 2.0**attempt) * (0.5 + random.random())


async def record(outcomes: list[tuple[PushDelivery, PushAttempt]]) -> None:
    """Store what happened to each message: the attempt log and the new state."""
    now = datetime.now(UTC)
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
        self, vapid: Vapid, *, concurrency: int = 8, timeout: float = 10.0, poll: float = 5.0
    ) -> None:
        self.pusher = vapid.pusher()
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

    def kick(self) -> None:
        """Wake the worker now (a report was just made)."""
        self.wake.set()

    async def _run(self) -> None:
        in_flight = self._in_flight
        while True:
            try:
                claimed = await self._claim(limit=200)
            except Exception:  # noqa: BLE001 - the worker must outlive a bad moment
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
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll)

    async def _claim(self, limit: int) -> list[PushDelivery]:
        """Take due rows in one UPDATE, stamping them with a lease of our own.

        The stamp (lease end plus a random microsecond offset) is both the
        lease, after which a crashed server's rows are due again, and the
        claim token: of several servers, each gets only the rows it stamped.
        """
        now = datetime.now(UTC)
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
            wait = (
                retry_after(response, delivery.attempts)
                if response is not None
                else backoff(delivery.attempts)
            )
            delivery.next_attempt_at = datetime.now(UTC) + timedelta(seconds=wait)
            self._wake_later(delivery.next_attempt_at)
        attempt = PushAttempt(
            delivery=delivery,
            status_code=status,
            error=error,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
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
                await record(batch)
            except Exception:  # noqa: BLE001 - the worker must outlive a bad moment
                # The rows keep their lease and are sent again when it ends.
                log.exception("recording %d push outcomes failed", len(batch))

    def _wake_later(self, when: datetime) -> None:
        delay = max(0.0, (when - datetime.now(UTC)).total_seconds())
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
