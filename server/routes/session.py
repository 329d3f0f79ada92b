"""Logging in and out, this device's session and the others, and who am I."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server import users
from server.api import ApiRoute, reply
from server.auth import Sessions, TooManyAttempts, client_address
from server.error_text import error_body
from server.models import User
from server.users import Credentials, SessionsEnded, UserOut


async def login(request: Request, body: Credentials) -> Response:
    """Log in with username and password; sets the session cookie.

    After 5 failed logins of a username in 15 minutes, or 20 from one address
    (settings), every login of it is refused with 429 and Retry-After, the
    right password too, until the oldest of those failures is 15 minutes old.
    """
    sessions: Sessions = request.app.state.sessions
    try:
        user, out = await users.log_in(sessions.logins, body, client_address(request))
    except TooManyAttempts as exc:
        return JSONResponse(error_body(request, exc), status_code=exc.status, headers=exc.headers)
    response = reply(out)
    await sessions.start(request, response, user)
    return response


async def logout(request: Request) -> Response:
    """Log out of this browser: its session ends (other devices stay logged in)."""
    response = Response(status_code=204)
    await request.app.state.sessions.end(request, response)
    return response


async def logout_others(request: Request, user: User) -> Response:
    """Log out every other device of mine (退出其他设备); this one stays logged in."""
    sessions: Sessions = request.app.state.sessions
    revoked = await sessions.end_others(request.state.session)
    return reply(SessionsEnded(revoked=revoked))


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
        responses={
            200: (UserOut, "Logged in: the user."),
            401: "Wrong username or password.",
            429: "Too many failed logins of this username or from this address: "
            "Retry-After says in how many seconds to try again.",
        },
    ),
    ApiRoute("DELETE", "/api/session", logout, login=False, responses={204: "Logged out."}),
    ApiRoute(
        "DELETE",
        "/api/sessions/others",
        logout_others,
        responses={200: (SessionsEnded, "The other devices are logged out: how many.")},
    ),
    ApiRoute("GET", "/api/me", me, responses={200: UserOut}),
]
