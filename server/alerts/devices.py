"""Devices that receive pushes: subscribe, unsubscribe, and a test notification."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server import netcheck
from server.alerts.queue import enqueue_test
from server.alerts.vapid import b64url_decode
from server.context import Context
from server.errors import N_, Msg, invalid
from server.models import PushSubscription, User
from server.schemas import Shape, Written


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _decode(value: str) -> bytes:
    try:
        return b64url_decode(value)
    except ValueError:
        raise ValueError("not base64url") from None


class Keys(BaseModel):
    p256dh: str = Field(max_length=200, description="the device's P-256 public key, base64url")
    auth: str = Field(max_length=100, description="the 16-byte auth secret, base64url")

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        raw = _decode(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("not an uncompressed P-256 public key")
        return value

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(_decode(value)) != 16:
            raise ValueError("the auth secret is 16 bytes")
        return value


class SubscriptionIn(BaseModel):
    """The browser's ``PushSubscription.toJSON()``."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(max_length=1000)
    expirationTime: float | None = None  # the browser's name
    keys: Keys

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        # Push services are https; plain http only to this machine (tests,
        # a local relay), so a subscription cannot aim the server elsewhere.
        if parts.scheme == "https" and parts.hostname:
            return value
        if parts.scheme == "http" and _loopback(parts.hostname):
            return value
        raise ValueError("a push endpoint is an https URL")


class EndpointIn(BaseModel):
    """Which device to forget, by its push endpoint."""

    endpoint: str = Field(max_length=1000)


class SubscriptionOut(Shape):
    """The device's subscription, as kept."""

    endpoint: str


class Queued(Shape):
    """How many messages were queued (one per device)."""

    queued: int


# Devices a person keeps alerts on; a new one beyond this replaces the oldest.
MAX_DEVICES = 10


async def endpoint_problem(endpoint: str, allowed: tuple[str, ...]) -> str | None:
    """Why the server must not post to ``endpoint``, or None: it must be on a
    known push service (``settings.push_hosts``), on its https port, and not
    resolve into the server's own networks."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return N_("the endpoint's port is not a number.")
    if parts.username is not None or parts.password is not None:
        return N_("a push endpoint carries no user name or password.")
    if not netcheck.listed(host, port, allowed):
        return Msg("{host} is not a known push service.", host=host or Msg("no host"))
    ip_listed = netcheck.literal(host) is not None
    if port not in (None, 443) and not ip_listed and f"{host}:{port}" not in allowed:
        return N_("a push service listens on the https port (443).")
    return await netcheck.private_address(host, allowed)


async def subscribe(
    ctx: Context, user: User, body: SubscriptionIn, language: str, user_agent: str
) -> Written[SubscriptionOut]:
    """Keep this device's subscription for ``user``; pushes speak ``language``.

    The same device may change hands or keys: the latest login owns it. A
    person keeps at most :data:`MAX_DEVICES`; the oldest goes.
    """
    problem = await endpoint_problem(body.endpoint, ctx.settings.push_hosts)
    if problem is not None:
        raise invalid("endpoint", problem)
    agent = user_agent[:500]
    sub, created = await PushSubscription.get_or_create(
        endpoint=body.endpoint,
        defaults={
            "user": user,
            "p256dh": body.keys.p256dh,
            "auth": body.keys.auth,
            "language": language,
            "user_agent": agent,
        },
    )
    if not created:
        sub.user_id, sub.p256dh, sub.auth = user.id, body.keys.p256dh, body.keys.auth
        sub.language, sub.user_agent = language, agent
        await sub.save()
    kept = await PushSubscription.filter(user_id=user.id).order_by("-created_at", "-id")
    for old in kept[MAX_DEVICES:]:
        await old.delete()
    return Written(SubscriptionOut(endpoint=sub.endpoint), created=created)


async def unsubscribe(user: User, body: EndpointIn) -> None:
    """Forget one of the user's devices (nothing happens if it was not there)."""
    await PushSubscription.filter(endpoint=body.endpoint, user_id=user.id).delete()


async def send_test(ctx: Context, user: User) -> Queued:
    """A test notification to every device of ``user``."""
    queued = await enqueue_test(user)
    ctx.committed(queued)
    return Queued(queued=queued)
