"""Logging in and out, and who am I."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server import users
from server.api import ApiRoute, reply
from server.auth import Sessions
from server.models import User
from server.users import Credentials, UserOut


async def login(request: Request, body: Credentials) -> Response:
    """Log in with username and password; sets the session cookie."""
    user, out = await users.log_in(body)
    response = reply(out)
    request.app.state.sessions.login(request, response, user)
    return response


async def logout(request: Request) -> Response:
    """Log out of this browser (other devices stay logged in)."""
    response = Response(status_code=204)
    Sessions.logout(response)
    return response


async def me(request: Request, user: User) -> Response:
    """The logged-in user, with role and sites."""
    return reply(await users.user_out(user))


routes = [
    ApiRoute(
        "POST",
        "/api/session",
        login,
        login=False,
        body=Credentials,
        responses={200: (UserOut, "Logged in: the user."), 401: "Wrong username or password."},
    ),
    ApiRoute("DELETE", "/api/session", logout, login=False, responses={204: "Logged out."}),
    ApiRoute("GET", "/api/me", me, responses={200: UserOut}),
]
