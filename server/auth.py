"""Logging in, sessions, the CSRF check, and the role and site guards.

A session is a signed cookie holding the user's id and session version. It
lasts 30 days, because a guard must not be logged out mid-shift, and every
session of a user is revoked at once by bumping that version (lost phone).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server import passwords
from server.errors import ApiError
from server.models import Role, Site, User

SESSION_COOKIE = "onsite_session"
CSRF_COOKIE = "onsite_csrf"
CSRF_HEADER = "x-requested-with"
CSRF_HEADER_VALUE = "onsite"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def authenticate(username: str, password: str) -> User | None:
    """The active user with this password, or None (as slowly for an unknown name)."""
    user = await User.get_or_none(username=username)
    if user is None:
        passwords.verify_nobody(password)
        return None
    if not user.is_active or not passwords.verify_password(user.password_hash, password):
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        await user.save(update_fields=["password_hash"])
    return user


class Sessions:
    """Signs and reads the session cookie."""

    def __init__(self, secret_key: str, max_age_days: int) -> None:
        self._signer = URLSafeTimedSerializer(secret_key, salt="onsite.session")
        self.max_age = max_age_days * 24 * 3600

    def login(self, request: Request, response: Response, user: User) -> None:
        token = self._signer.dumps({"u": user.id, "v": user.session_version})
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )

    @staticmethod
    def logout(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")

    async def user_for(self, token: str | None) -> User | None:
        """The active user a token belongs to, or None if it is bad or revoked."""
        if not token:
            return None
        try:
            data = self._signer.loads(token, max_age=self.max_age)
            user_id, version = int(data["u"]), int(data["v"])
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        user = await User.get_or_none(id=user_id)
        if user is None or not user.is_active or user.session_version != version:
            return None
        return user


class AuthMiddleware:
    """Puts the logged-in user (or None) on ``request.state.user``.

    Also refuses state-changing API calls without ``X-Requested-With: onsite``:
    a cross-site form cannot set that header, so this is the CSRF defence.
    """

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        path = scope["path"]
        if (
            path.startswith("/api/")
            and scope["method"] not in SAFE_METHODS
            and conn.headers.get(CSRF_HEADER, "").lower() != CSRF_HEADER_VALUE
        ):
            error = ApiError(
                403, "csrf", "State-changing calls need the header X-Requested-With: onsite."
            )
            response = JSONResponse(error.body(), status_code=error.status)
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["user"] = None
        if not path.startswith("/static/"):
            state["user"] = await self.sessions.user_for(conn.cookies.get(SESSION_COOKIE))
        await self.app(scope, receive, send)


def csrf_token(request: Request) -> str:
    """The form token for this browser (double-submit against a cookie)."""
    token = request.cookies.get(CSRF_COOKIE) or request.scope.get("onsite.csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.scope["onsite.csrf"] = token
    return token


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Send the cookie that backs :func:`csrf_token` if the page made a new one."""
    token = request.scope.get("onsite.csrf")
    if token and not request.cookies.get(CSRF_COOKIE):
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            path="/",
            secure=request.url.scheme == "https",
        )


def check_form_csrf(request: Request, submitted: Any) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not isinstance(submitted, str) or not hmac.compare_digest(cookie, submitted):
        raise ApiError(403, "csrf", "The form has expired; reload the page and try again.")


# --- guards -------------------------------------------------------------------


def current_user(request: Request) -> User:
    """The logged-in user, or a 401."""
    user = getattr(request.state, "user", None)
    if user is None:
        raise ApiError(401, "not_authenticated", "Log in first.")
    return user


def require_role(user: User, roles: Iterable[Role]) -> None:
    """403 unless ``user`` has one of ``roles`` (admins pass every role check)."""
    allowed = set(roles)
    if user.role != Role.ADMIN and user.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise ApiError(403, "forbidden", f"Only {names} may do this.")


async def require_site(user: User, site: Site) -> None:
    """403 unless ``user`` belongs to ``site``; admins see every site."""
    if user.role == Role.ADMIN:
        return
    if site.id not in await user.site_ids():
        raise ApiError(403, "forbidden_site", "You do not belong to this site.")
