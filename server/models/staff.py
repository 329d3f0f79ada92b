"""Staff and their logins: users with their role and sites, each login's
session, and the failed logins counted against a name or an address."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, cast

from tortoise import fields
from tortoise.expressions import F
from tortoise.models import Model

if TYPE_CHECKING:
    from server.models.sites import Site


class Role(StrEnum):
    GUARD = "guard"
    TECHNICIAN = "technician"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class User(Model):
    """A member of staff: session_version is bumped when every login is revoked."""

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    display_name = fields.CharField(max_length=200, default="")
    role = fields.CharEnumField(Role, max_length=16)
    password_hash = fields.CharField(max_length=255)
    is_active = fields.BooleanField(default=True)
    session_version = fields.IntField(default=1)
    language = fields.CharField(max_length=8, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sites: fields.ManyToManyRelation[Site] = fields.ManyToManyField(
        "onsite.Site", related_name="users", through="user_site"
    )

    class Meta:
        table = "user"

    async def end_sessions(self) -> None:
        """End every session of this user at its next request (a lost phone)."""
        await LoginSession.filter(user_id=self.id, revoked_at=None).update(
            revoked_at=datetime.now(UTC)
        )
        # The version still tells long-lived streams that every session ended.
        await User.filter(id=self.id).update(session_version=F("session_version") + 1)
        await self.refresh_from_db(fields=["session_version"])

    async def site_ids(self) -> set[int]:
        """The ids of the sites this user belongs to."""
        # values_list(flat=True) gives bare values; tortoise types them as tuples.
        ids = cast("list[int]", await self.sites.all().values_list("id", flat=True))
        return set(ids)


class LoginSession(Model):
    """One login on one device, revoked alone (log out) or with the rest.

    The cookie carries the random id, signed; only its SHA-256 is kept here, so
    a copy of the database logs nobody in."""

    id = fields.BigIntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="login_sessions", on_delete=fields.CASCADE
    )
    user_id: int
    # Set from the app's clock (not auto_now_add), so tests can age a session.
    created_at = fields.DatetimeField()
    # Moved on at most every few minutes, not at every request.
    last_seen_at = fields.DatetimeField()
    user_agent = fields.CharField(max_length=200, default="", db_default="")
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "login_session"


class LoginFailure(Model):
    """A failed login (or one being checked), counted against a username or an address.

    ``key`` is the SHA-256 of ``account:<username>`` or ``address:<client
    address>``. Kept in the database so that every app server counts the same
    failures."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=64, db_index=True)
    at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "login_failure"
