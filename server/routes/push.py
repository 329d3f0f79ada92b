"""Push subscriptions per device, the public key, and a test notification."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.auth import current_user, requires
from server.errors import parse_body
from server.models import PushSubscription
from server.push import b64url_decode, enqueue_test


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class Keys(BaseModel):
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)

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


def _decode(value: str) -> bytes:
    try:
        return b64url_decode(value)
    except ValueError:
        raise ValueError("not base64url") from None


class SubscriptionIn(BaseModel):
    """The browser's ``PushSubscription.toJSON()``."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(max_length=1000)
    expirationTime: float | None = None  # noqa: N815 - the browser's name
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
    endpoint: str = Field(max_length=1000)


async def public_key(request: Request) -> Response:
    """VAPID key.
    ---
    summary: The VAPID public key, as applicationServerKey for pushManager.subscribe().
    responses:
      200: {description: "{public_key}"}
    """
    return JSONResponse({"public_key": request.app.state.vapid.application_server_key})


@requires()
async def subscribe(request: Request) -> Response:
    """Subscribe this device.
    ---
    summary: Save this device's push subscription (PushSubscription.toJSON()) for the user.
    requestBody:
      content:
        application/json:
          schema: {type: object, required: [endpoint, keys]}
    responses:
      201: {description: Subscribed.}
      200: {description: "Already subscribed: refreshed."}
      422: {description: "Not an https endpoint, or keys that are not P-256 / 16 bytes."}
    """
    user = current_user(request)
    body = await parse_body(request, SubscriptionIn)
    language = request.state.lang
    agent = request.headers.get("user-agent", "")[:500]
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
        # The same device may change hands or keys: the latest login owns it.
        sub.user_id, sub.p256dh, sub.auth = user.id, body.keys.p256dh, body.keys.auth  # type: ignore[attr-defined]
        sub.language, sub.user_agent = language, agent
        await sub.save()
    return JSONResponse({"endpoint": sub.endpoint}, status_code=201 if created else 200)


@requires()
async def unsubscribe(request: Request) -> Response:
    """Unsubscribe this device.
    ---
    summary: Forget this device's push subscription.
    requestBody:
      content:
        application/json:
          schema: {type: object, required: [endpoint], properties: {endpoint: {type: string}}}
    responses:
      204: {description: Unsubscribed (or was not subscribed).}
    """
    user = current_user(request)
    body = await parse_body(request, EndpointIn)
    await PushSubscription.filter(endpoint=body.endpoint, user_id=user.id).delete()
    return Response(status_code=204)


@requires()
async def send_test(request: Request) -> Response:
    """Test notification.
    ---
    summary: Send a test notification to every device of the user.
    responses:
      202: {description: "{queued: n}"}
    """
    queued = await enqueue_test(current_user(request))
    if queued:
        request.app.state.deliverer.kick()
    return JSONResponse({"queued": queued}, status_code=202)


routes = [
    Route("/api/push/key", public_key, methods=["GET"]),
    Route("/api/push/subscriptions", subscribe, methods=["PUT"]),
    Route("/api/push/subscriptions", unsubscribe, methods=["DELETE"]),
    Route("/api/push/test", send_test, methods=["POST"]),
]
