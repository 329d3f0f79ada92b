"""People: who am I, logging in, and the administration of staff (admins write;
supervisors read their sites' staff)."""

from __future__ import annotations

import re

import anyio.to_thread
from pydantic import BaseModel, Field
from tortoise.transactions import in_transaction

from server import audit
from server.access import require_not_own_lockout, require_site, users_visible_to
from server.auth import Logins
from server.errors import ApiError, Msg, invalid
from server.models import Role, Site, User
from server.passwords import generate_password, hash_password
from server.schemas import Shape, SiteRef, Timestamp, Written


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


async def log_in(logins: Logins, body: Credentials, address: str) -> tuple[User, UserOut]:
    """The user with these credentials, or a 401 that does not say which was
    wrong, or (after too many failures) a 429 :class:`~server.auth.TooManyAttempts`."""
    user = await logins.authenticate(body.username, body.password, address)
    if user is None:
        raise ApiError(401, "bad_credentials", "Wrong username or password.")
    return user, await user_out(user)


class SessionsEnded(Shape):
    """How many sessions were ended."""

    revoked: int


async def revoke_sessions(actor: User | None, username: str) -> None:
    """End every session of ``username`` at its next request (a lost phone)."""
    user = await User.get_or_none(username=username)
    if user is None:
        raise ApiError(404, "not_found", "No such user.")
    async with in_transaction():
        await user.end_sessions()
        await audit.record(actor, "user.sessions", username)


# --- administration: people ----------------------------------------------------

USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class UserIn(BaseModel):
    """A person: their name for colleagues, role, sites, and whether they may log in."""

    display_name: str = Field(default="", max_length=200)
    role: Role
    sites: list[str] = Field(default_factory=list, max_length=100, description="site codes")
    active: bool = Field(default=True, description="false: every session ends, no login")


class PasswordIn(BaseModel):
    """A new password, or nothing for one made up and shown once."""

    password: str | None = Field(default=None, min_length=8, max_length=1024)


class UserAdminOut(Shape):
    """A user as admins (and their sites' supervisors) see them."""

    username: str
    display_name: str
    role: Role
    sites: list[SiteRef]
    active: bool
    created_at: Timestamp


class UserWritten(Shape):
    """The user after the change; ``password`` only when one was made up now
    (shown this once: it is kept only as a hash)."""

    user: UserAdminOut
    password: str | None


class UserList(Shape):
    """People, by username."""

    users: list[UserAdminOut]


def _admin_view(user: User, sites: list[Site]) -> UserAdminOut:
    return UserAdminOut(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        sites=[SiteRef.of(s) for s in sorted(sites, key=lambda s: s.code)],
        active=user.is_active,
        created_at=user.created_at,
    )


async def by_username(username: str) -> User | None:
    """The user called ``username``, active or not, or None."""
    return await User.get_or_none(username=username)


async def admin_out(user: User) -> UserAdminOut:
    return _admin_view(user, list(await user.sites.all()))


async def list_users(viewer: User, site: str | None) -> UserList:
    """Everyone (admins), or the staff of the viewer's sites (supervisors, read-only)."""
    if site:
        found = await Site.get_or_none(code=site)
        if found is None:
            raise invalid("site", Msg("no site {site!r}.", site=site), code="unknown_site")
        await require_site(viewer, found)
        query = User.filter(sites__id=found.id)
    else:
        query = await users_visible_to(viewer)
    people = await query.distinct().order_by("username").prefetch_related("sites")
    return UserList(users=[_admin_view(u, list(u.sites)) for u in people])


async def _sites(codes: list[str], role: Role) -> list[Site]:
    found = []
    for i, code in enumerate(codes):
        site = await Site.get_or_none(code=code)
        if site is None:
            raise invalid(f"sites.{i}", Msg("no site {site!r}.", site=code), code="unknown_site")
        found.append(site)
    if not found and role != Role.ADMIN:
        raise invalid("sites", "a guard, technician or supervisor belongs to at least one site.")
    return found


async def put_user(
    actor: User | None, username: str, body: UserIn, *, password: str | None = None
) -> Written[UserWritten]:
    """Create ``username`` (201, with a made-up password unless ``password`` is
    given) or change them (200); the same again changes nothing.

    Deactivating ends every session at its next request. Nobody deactivates
    themselves or takes away their own admin role (the last door out).
    """
    if not USERNAME.fullmatch(username):
        raise invalid("username", "1 to 64 of a-z, 0-9, and _ . - inside (no capitals or spaces).")
    sites = await _sites(list(dict.fromkeys(body.sites)), body.role)
    name = body.display_name.strip()
    found = await User.get_or_none(username=username)
    if found is None:
        made_up = password is None
        password = password or generate_password()
        hashed = await _hashed(password)
        async with in_transaction():
            user = await User.create(
                username=username,
                display_name=name,
                role=body.role,
                is_active=body.active,
                password_hash=hashed,
            )
            if sites:
                await user.sites.add(*sites)
            await audit.record(
                actor, "user.create", username, role=body.role.value, sites=body.sites, name=name
            )
        out = UserWritten(user=await admin_out(user), password=password if made_up else None)
        return Written(out, created=True)
    require_not_own_lockout(actor, found, body.active, body.role)
    before = {
        "name": found.display_name,
        "role": found.role.value,
        "sites": sorted(await found.sites.all().values_list("code", flat=True)),
        "active": found.is_active,
    }
    after = {
        "name": name,
        "role": body.role.value,
        "sites": sorted(s.code for s in sites),
        "active": body.active,
    }
    if before == after:
        return Written(UserWritten(user=await admin_out(found), password=None))
    async with in_transaction():
        await User.filter(id=found.id).update(
            display_name=name, role=body.role, is_active=body.active
        )
        await found.sites.clear()
        if sites:
            await found.sites.add(*sites)
        if before["active"] and not body.active:
            await found.end_sessions()
        changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        await audit.record(actor, "user.change", username, **changed)
    await found.refresh_from_db()
    return Written(UserWritten(user=await admin_out(found), password=None))


async def _hashed(password: str) -> str:
    """argon2 in a worker thread: other requests go on meanwhile."""
    return await anyio.to_thread.run_sync(hash_password, password)


async def set_password(actor: User | None, username: str, body: PasswordIn) -> UserWritten:
    """A new password (made up and shown once, unless given); every session ends."""
    user = await User.get_or_none(username=username)
    if user is None:
        raise ApiError(404, "not_found", "No such user.")
    password = body.password or generate_password()
    hashed = await _hashed(password)
    async with in_transaction():
        await User.filter(id=user.id).update(password_hash=hashed)
        await user.end_sessions()
        await audit.record(actor, "user.password", username, made_up=body.password is None)
    return UserWritten(user=await admin_out(user), password=None if body.password else password)
