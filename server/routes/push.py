"""Push: the public key, this device's subscription, and a test notification."""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from server.alerts import devices
from server.alerts.devices import EndpointIn, Queued, SubscriptionIn, SubscriptionOut
from server.api import ApiRoute, reply, written
from server.models import User
from server.schemas import Shape


class PublicKey(Shape):
    """The VAPID public key, as applicationServerKey for pushManager.subscribe()."""

    public_key: str = Field(description="base64url of the uncompressed P-256 point")


async def public_key(request: Request) -> Response:
    """The VAPID public key, as applicationServerKey for pushManager.subscribe()."""
    return reply(PublicKey(public_key=request.app.state.vapid.application_server_key))


async def subscribe(request: Request, user: User, body: SubscriptionIn) -> Response:
    """Keep this device's push subscription (PushSubscription.toJSON()) for the user.

    Alerts to it speak the language of this request.
    """
    result = await devices.subscribe(
        request.app.state.context,
        user,
        body,
        request.state.lang,
        request.headers.get("user-agent", ""),
    )
    return written(result)


async def unsubscribe(request: Request, user: User, body: EndpointIn) -> Response:
    """Forget this device's push subscription."""
    await devices.unsubscribe(user, body)
    return Response(status_code=204)


async def send_test(request: Request, user: User) -> Response:
    """Send a test notification to every device of the user."""
    return reply(await devices.send_test(request.app.state.context, user), 202)


routes = [
    ApiRoute("GET", "/api/push/key", public_key, login=False, responses={200: PublicKey}),
    ApiRoute(
        "PUT",
        "/api/push/subscriptions",
        subscribe,
        body=SubscriptionIn,
        responses={
            201: (SubscriptionOut, "Subscribed."),
            200: (SubscriptionOut, "Already subscribed: refreshed."),
            422: "Not an https endpoint, or keys that are not P-256 / 16 bytes.",
        },
    ),
    ApiRoute(
        "DELETE",
        "/api/push/subscriptions",
        unsubscribe,
        body=EndpointIn,
        responses={204: "Unsubscribed (or was not subscribed)."},
    ),
    ApiRoute("POST", "/api/push/test", send_test, responses={202: Queued}),
]
