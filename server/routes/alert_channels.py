"""A site's alert channels (WeCom and DingTalk group robots): read by admins and
the site's supervisors, written by admins. Their pages are with the site's
other pages in :mod:`server.routes.admin_pages`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from server import alert_channels
from server.alert_channels import ChannelIn, ChannelList, ChannelOut, ChannelTestOut
from server.api import ApiRoute, reply, written
from server.models import Role, User


async def list_channels(request: Request, user: User) -> Response:
    """A site's alert channels, their webhooks masked (admins, and the site's supervisors)."""
    return reply(await alert_channels.list_channels(user, request.path_params["code"]))


async def put_channel(request: Request, user: User, body: ChannelIn) -> Response:
    """Add or change one of the site's alert channels (under an id the client made).

    The webhook must be https on the service's own host (qyapi.weixin.qq.com
    for WeCom, oapi.dingtalk.com for DingTalk, or a host the setting
    ONSITE_CHANNEL_HOSTS adds) and carry its key or access_token; a signing
    secret is for DingTalk only. Left out on a change, the webhook and the
    secret stay as they are.
    """
    params = request.path_params
    result = await alert_channels.put_channel(
        request.app.state.context, user, params["code"], params["channel_id"], body
    )
    return written(result)


async def delete_channel(request: Request, user: User) -> Response:
    """Remove one of the site's alert channels (no error if it is gone already)."""
    params = request.path_params
    await alert_channels.delete_channel(user, params["code"], params["channel_id"])
    return Response(status_code=204)


async def send_test(request: Request, user: User) -> Response:
    """Send a test message to one of the site's alert channels.

    The message is queued; once it is sent, the channel shows when
    (last_sent_at), or what the service said if it refused (last_error).
    """
    params = request.path_params
    result = await alert_channels.send_test(
        request.app.state.context, params["code"], params["channel_id"]
    )
    return reply(result, 202)


ADMIN = [Role.ADMIN]
CHANNEL = "/api/sites/{code}/channels/{channel_id}"

routes: list[BaseRoute] = [
    ApiRoute(
        "GET",
        "/api/sites/{code}/channels",
        list_channels,
        roles=[Role.SUPERVISOR, Role.ADMIN],
        responses={
            200: ChannelList,
            403: "Not an admin, nor a supervisor of this site.",
            404: "No such site.",
        },
    ),
    ApiRoute(
        "PUT",
        CHANNEL,
        put_channel,
        roles=ADMIN,
        body=ChannelIn,
        responses={
            201: (ChannelOut, "Added: the channel."),
            200: (ChannelOut, "Changed, or the same already: the channel."),
            404: "No such site.",
            409: "The channel id belongs to another site.",
            422: "A webhook that is not https on the service's host or lacks its key; a secret for WeCom; a bad id.",
        },
    ),
    ApiRoute(
        "DELETE",
        CHANNEL,
        delete_channel,
        roles=ADMIN,
        responses={204: "Removed (or was not there).", 404: "No such site.", 422: "A bad id."},
    ),
    ApiRoute(
        "POST",
        f"{CHANNEL}/test",
        send_test,
        roles=ADMIN,
        responses={
            202: ChannelTestOut,
            404: "No such site or channel.",
            422: "A bad id.",
        },
    ),
]
