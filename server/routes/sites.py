"""Sites, and ending a user's sessions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server import sites, users
from server.api import ApiRoute, reply
from server.models import Role, User
from server.sites import SiteList, SiteOut


async def list_sites(request: Request, user: User) -> Response:
    """The sites the user belongs to (every site, for an admin)."""
    return reply(await sites.list_sites(user))


async def get_site(request: Request, user: User) -> Response:
    """One site and its staff; only for its members and admins."""
    return reply(await sites.get_site(user, request.path_params["code"]))


async def revoke_user_sessions(request: Request, user: User) -> Response:
    """Log a user out everywhere (a lost phone); admins only."""
    await users.revoke_sessions(request.path_params["username"])
    return Response(status_code=204)


routes = [
    ApiRoute("GET", "/api/sites", list_sites, responses={200: SiteList}),
    ApiRoute(
        "GET",
        "/api/sites/{code}",
        get_site,
        responses={
            200: SiteOut,
            403: "The user does not belong to this site.",
            404: "No such site.",
        },
    ),
    ApiRoute(
        "DELETE",
        "/api/users/{username}/sessions",
        revoke_user_sessions,
        roles=[Role.ADMIN],
        responses={
            204: "Every session of that user ends at its next request.",
            404: "No such user.",
        },
    ),
]
