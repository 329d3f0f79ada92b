"""Logging in and out, and who am I."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.auth import Sessions, authenticate, current_user, requires
from server.errors import ApiError, parse_body
from server.models import User


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


async def user_json(user: User) -> dict[str, Any]:
    sites = await user.sites.all().order_by("code")
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "language": user.language,
        "sites": [{"code": s.code, "name": s.name} for s in sites],
    }


def sessions(request: Request) -> Sessions:
    return request.app.state.sessions


async def login(request: Request) -> Response:
    """Log in.
    ---
    summary: Log in with username and password; sets the session cookie.
    requestBody:
      content:
        application/json:
          schema: {type: object, required: [username, password],
                   properties: {username: {type: string}, password: {type: string}}}
    responses:
      200: {description: "The user, with their sites."}
      401: {description: Wrong username or password.}
      422: {description: A field is missing or malformed.}
    """
    body = await parse_body(request, Credentials)
    user = await authenticate(body.username, body.password)
    if user is None:
        raise ApiError(401, "bad_credentials", "Wrong username or password.")
    response = JSONResponse(await user_json(user))
    sessions(request).login(request, response, user)
    return response


async def logout(request: Request) -> Response:
    """Log out.
    ---
    summary: Log out of this browser (other devices stay logged in).
    responses:
      204: {description: Logged out.}
    """
    response = Response(status_code=204)
    Sessions.logout(response)
    return response


@requires()
async def me(request: Request) -> Response:
    """Who am I.
    ---
    summary: The logged-in user, with role and sites.
    responses:
      200: {description: The user.}
      401: {description: Not logged in, or the session was revoked.}
    """
    return JSONResponse(await user_json(current_user(request)))


routes = [
    Route("/api/session", login, methods=["POST"]),
    Route("/api/session", logout, methods=["DELETE"]),
    Route("/api/me", me, methods=["GET"]),
]
