"""Logging in, sessions and the CSRF check (who may see or do what: :mod:`server.access`).

A session is a row (:class:`~server.models.LoginSession`) whose random id the
browser holds in a signed cookie. It lasts 30 days, because a guard must not
be logged out mid-shift; logging out ends that one row, and every session of
a user ends at once for a lost phone. Failed logins are counted in the
database per username and per client address (every app server sees the same
counts) and, past a limit, answered with 429 until the window moves on.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from server import passwords
from server.error_text import error_body
from server.errors import N_, ApiError, Msg
from server.models import LoginFailure, LoginSession, User
from server.settings import Settings

SESSION_COOKIE = "onsite_session"
CSRF_COOKIE = "onsite_csrf"
HEALTH_PATH = "/healthz"
CSRF_HEADER = "x-requested-with"
CSRF_HEADER_VALUE = "onsite"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A session's last_seen_at moves on at most this often: not a write per request.
TOUCH_EVERY = timedelta(minutes=5)
USER_AGENT_CHARS = 200

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _storable(text: str) -> bool:
    """Whether every database can hold ``text`` (PostgreSQL refuses NUL and
    lone surrogates): a username that cannot be stored belongs to nobody."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def client_address(request: Request) -> str:
    """The address failed logins are counted against (uvicorn puts a trusted
    proxy's X-Forwarded-For here)."""
    return request.client.host if request.client else "unknown"


# --- logging in -----------------------------------------------------------------


async def authenticate(
    username: str, password: str, limiter: anyio.CapacityLimiter | None = None
) -> User | None:
    """The active user with this password, or None, checked in a worker thread
    (``limiter`` bounds how many at once). Not throttled: :class:`Logins` is."""
    limiter = limiter or anyio.CapacityLimiter(1)
    user = await User.get_or_none(username=username) if _storable(username) else None
    # Verified for an unknown or inactive user too: the same time either way.
    stored = user.password_hash if user is not None else None
    matches = await passwords.check(stored, password, limiter)
    if user is None or not matches or not user.is_active:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.rehash(password, limiter)
        await user.save(update_fields=["password_hash"])
    return user


class TooManyAttempts(ApiError):
    """429: too many failed logins for a username or an address; try again
    after ``retry_after`` seconds (the Retry-After header)."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        self.minutes = math.ceil(self.retry_after / 60)
        message = (
            N_("Too many failed logins: try again in {minutes} minute.")
            if self.minutes == 1
            else N_("Too many failed logins: try again in {minutes} minutes.")
        )
        super().__init__(
            429,
            "too_many_attempts",
            Msg(message, minutes=self.minutes),
            retry_after=self.retry_after,
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Logins:
    """Checks passwords in worker threads and throttles failed logins.

    A failure counts for ``window`` against the username typed (whether or
    not it exists, so a 429 says nothing about who exists) and against the
    client's address. With ``account_limit`` (or ``address_limit``) of them in
    the window, every login of that name (or from that address) is refused,
    the right password too, without checking it.
    """

    def __init__(self, settings: Settings, clock: Clock = _utcnow) -> None:
        # Each check holds 64 MiB for a tenth of a second: a burst of logins
        # queues here instead of running all at once.
        self.limiter = anyio.CapacityLimiter(settings.password_workers)
        self.account_limit = settings.login_account_limit
        self.address_limit = settings.login_address_limit
        self.window = timedelta(minutes=settings.login_window_minutes)
        self.clock = clock

    async def authenticate(self, username: str, password: str, address: str) -> User | None:
        """The active user with this password, or None; :class:`TooManyAttempts`
        past a limit.

        The attempt is counted as a failure before the password is checked,
        so concurrent guesses cannot slip past the limit; a success takes it
        back and clears the username's count.
        """
        now = self.clock()
        limits = [
            (_digest(f"account:{username}"), self.account_limit),
            (_digest(f"address:{address}"), self.address_limit),
        ]
        await self._refuse_if_locked(limits, now)
        held = [await LoginFailure.create(key=key, at=now) for key, _ in limits]
        for row, (key, limit) in zip(held, limits, strict=True):
            rank = await LoginFailure.filter(
                key=key, at__gt=now - self.window, id__lte=row.id
            ).count()
            if rank > limit:  # concurrent attempts took the last places
                await LoginFailure.filter(id__in=[r.id for r in held]).delete()
                await self._refuse_if_locked(limits, now)
                # Their places were freed meanwhile (a success): try again at once.
                raise TooManyAttempts(1)
        user = await authenticate(username, password, self.limiter)
        if user is None:
            await LoginFailure.filter(at__lte=now - self.window).delete()  # the expired
            return None
        await LoginFailure.filter(Q(key=limits[0][0]) | Q(id=held[1].id)).delete()
        return user

    async def _refuse_if_locked(self, limits: list[tuple[str, int]], now: datetime) -> None:
        waits = [await self._wait(key, limit, now) for key, limit in limits]
        if max(waits) > 0:
            raise TooManyAttempts(max(waits))

    async def _wait(self, key: str, limit: int, now: datetime) -> int:
        """Seconds until ``key`` has fewer than ``limit`` failures in the window."""
        recent = await (
            LoginFailure.filter(key=key, at__gt=now - self.window)
            .order_by("-at", "-id")
            .limit(limit)
            .values_list("at", flat=True)
        )
        if len(recent) < limit:
            return 0
        # Free again once the limit-th newest failure leaves the window.
        oldest: datetime = recent[-1]  # type: ignore[assignment]
        return max(1, math.ceil((oldest + self.window - now).total_seconds()))


# --- sessions ------------------------------------------------------------------


class Sessions:
    """Starts, finds and ends sessions: a row each, its id signed in the cookie."""

    def __init__(self, settings: Settings, clock: Clock = _utcnow) -> None:
        self._signer = URLSafeTimedSerializer(settings.secret_key, salt="onsite.session")
        self.max_age = settings.session_days * 24 * 3600
        self.clock = clock
        self.logins = Logins(settings, clock)

    @property
    def _lifetime(self) -> timedelta:
        return timedelta(seconds=self.max_age)

    async def start(self, request: Request, response: Response, user: User) -> LoginSession:
        """A new session for ``user`` on this browser, and its cookie on ``response``."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        # Sessions past their 30 days are kept no longer: one query per login.
        await LoginSession.filter(user_id=user.id, created_at__lte=now - self._lifetime).delete()
        agent = request.headers.get("user-agent", "").replace("\x00", "")
        session = await LoginSession.create(
            token_hash=_digest(token),
            user=user,
            created_at=now,
            last_seen_at=now,
            user_agent=agent[:USER_AGENT_CHARS],
        )
        response.set_cookie(
            SESSION_COOKIE,
            self._signer.dumps({"s": token}),
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        return session

    async def find(self, cookie: str | None) -> LoginSession | None:
        """The live session a cookie names, its user loaded, or None if the
        cookie is bad, of the old format, or its session ended or expired, or
        the user is inactive."""
        if not cookie:
            return None
        try:
            token = self._signer.loads(cookie, max_age=self.max_age)["s"]
        except (BadData, KeyError, TypeError, IndexError):
            return None
        if not isinstance(token, str):
            return None
        now = self.clock()
        session = (
            await LoginSession.filter(
                token_hash=_digest(token), revoked_at=None, created_at__gt=now - self._lifetime
            )
            .select_related("user")
            .first()
        )
        if session is None or not session.user.is_active:
            return None
        if now - session.last_seen_at >= TOUCH_EVERY:
            await LoginSession.filter(id=session.id).update(last_seen_at=now)
            session.last_seen_at = now
        return session

    async def end(self, request: Request, response: Response) -> None:
        """End this browser's session (if any) and forget its cookie."""
        session: LoginSession | None = getattr(request.state, "session", None)
        if session is not None:
            await LoginSession.filter(id=session.id, revoked_at=None).update(
                revoked_at=self.clock()
            )
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")

    def _others(self, session: LoginSession) -> QuerySet[LoginSession]:
        return LoginSession.filter(
            user_id=session.user_id,
            revoked_at=None,
            created_at__gt=self.clock() - self._lifetime,
        ).exclude(id=session.id)

    async def count_others(self, session: LoginSession) -> int:
        """How many other live sessions the user of ``session`` has."""
        return await self._others(session).count()

    async def end_others(self, session: LoginSession) -> int:
        """End every other live session of the user of ``session``; how many."""
        return await self._others(session).update(revoked_at=self.clock())


class AuthMiddleware:
    """Puts the logged-in user (or None) on ``request.state.user``, and their
    session on ``request.state.session``.

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
            response = JSONResponse(error_body(conn, error), status_code=error.status)
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        session = None
        # A health check neither needs a login nor touches a session (whose
        # lookup would be one more query to fail while the database is down).
        if not path.startswith("/static/") and path != HEALTH_PATH:
            session = await self.sessions.find(conn.cookies.get(SESSION_COOKIE))
        state["session"] = session
        state["user"] = session.user if session is not None else None
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
