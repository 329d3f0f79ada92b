"""People: the staff list, and what admins change about a person."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from server import users
from server.api import ApiRoute, reply, written
from server.models import Role, User
from server.users import PasswordIn, UserIn, UserList, UserWritten


class StaffQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    site: str | None = Field(default=None, max_length=32, description="a site code")


async def list_users(request: Request, user: User, query: StaffQuery) -> Response:
    """People: everyone for an admin; a supervisor's sites' staff (read-only) for a supervisor."""
    return reply(await users.list_users(user, query.site))


async def put_user(request: Request, user: User, body: UserIn) -> Response:
    """Add a person (201, with a password made up and shown this once) or change
    their name, role, sites or whether they may log in (200).

    ``active: false`` ends every session of theirs at its next request.
    """
    return written(await users.put_user(user, request.path_params["username"], body))


async def put_password(request: Request, user: User, body: PasswordIn) -> Response:
    """Reset a password: the one given, or one made up and shown this once.
    Every session of that person ends."""
    return reply(await users.set_password(user, request.path_params["username"], body))


async def revoke_user_sessions(request: Request, user: User) -> Response:
    """Log a user out everywhere (a lost phone); admins only."""
    await users.revoke_sessions(user, request.path_params["username"])
    return Response(status_code=204)


ADMIN = [Role.ADMIN]

routes = [
    ApiRoute(
        "GET",
        "/api/users",
        list_users,
        roles=[Role.SUPERVISOR],
        query=StaffQuery,
        responses={200: UserList, 403: "A site the supervisor does not belong to."},
    ),
    ApiRoute(
        "PUT",
        "/api/users/{username}",
        put_user,
        roles=ADMIN,
        body=UserIn,
        responses={
            201: (UserWritten, "Added: the person and their password, shown this once."),
            200: (UserWritten, "Changed, or the same already: the person."),
            422: "A bad username, an unknown site, no site for a non-admin, or your own role.",
        },
    ),
    ApiRoute(
        "PUT",
        "/api/users/{username}/password",
        put_password,
        roles=ADMIN,
        body=PasswordIn,
        responses={
            200: (UserWritten, "Set; the password when it was made up."),
            404: "No such user.",
        },
    ),
    ApiRoute(
        "DELETE",
        "/api/users/{username}/sessions",
        revoke_user_sessions,
        roles=ADMIN,
        responses={
            204: "Every session of that user ends at its next request.",
            404: "No such user.",
        },
    ),
]
