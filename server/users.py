"""People: who am I, logging in, and ending every session of a user."""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.auth import authenticate
from server.errors import ApiError
from server.models import Role, User
from server.schemas import Shape, SiteRef


class Credentials(BaseModel):
    """A username and password."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(Shape):
    """A user, with their role and the sites they belong to."""

    id: int
    username: str
    display_name: str
    role: Role
    language: str | None
    sites: list[SiteRef]


async def user_out(user: User) -> UserOut:
    sites = await user.sites.all().order_by("code")
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        language=user.language,
        sites=[SiteRef.of(s) for s in sites],
    )


async def log_in(body: Credentials) -> tuple[User, UserOut]:
    """The user with these credentials, or a 401 that does not say which was wrong."""
    user = await authenticate(body.username, body.password)
    if user is None:
        raise ApiError(401, "bad_credentials", "Wrong username or password.")
    return user, await user_out(user)


async def revoke_sessions(username: str) -> None:
    """End every session of ``username`` at its next request (a lost phone)."""
    user = await User.get_or_none(username=username)
    if user is None:
        raise ApiError(404, "not_found", "No such user.")
    await user.end_sessions()
