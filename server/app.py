"""The application factory: routes and middleware as lists, and a lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from server import db, passwords, playbook_book
from server.address_filter import StorableAddress
from server.alerts.deliverer import Deliverer
from server.alerts.retry import Backoff
from server.alerts.retry import backoff as push_backoff
from server.alerts.vapid import load_vapid
from server.auth import AuthMiddleware, Sessions
from server.context import Context, utcnow
from server.error_handlers import exception_handlers
from server.escalation import Escalator
from server.headers import SecurityHeaders
from server.health import DB_TIMEOUT_S
from server.i18n import LanguageMiddleware
from server.notices import Notices
from server.paths import STATIC_DIR
from server.photo_store import ORPHAN_GRACE_S, PhotoStore, open_store
from server.photos import with_rows
from server.reminders import Reminders
from server.routes import (
    action_pages,
    admin_pages,
    alert_channels,
    app_shell,
    contact_pages,
    dashboard,
    export,
    followup,
    health,
    login_pages,
    me_page,
    openapi,
    photos,
    playbook_pages,
    print_report,
    push,
    report_pages,
    reports,
    review,
    session,
    sites,
    users,
)
from server.routes import playbooks as playbook_routes
from server.routes import stream as stream_routes
from server.settings import Settings
from server.stream import Hub


class StaticAssets(StaticFiles):
    """Static files that the browser checks again (ETag) before each use.

    Modules import each other without a version in the URL, so a heuristic
    HTTP cache could mix two builds; with the service worker in place the
    files come from its per-build cache instead.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


log = logging.getLogger("onsite")


async def _sweep_later(photo_store: PhotoStore) -> None:
    """The start-up sweep again, once files placed before this start are past
    the grace: what a crash left between publishing a photo and committing
    its row goes too, not only at the next start."""
    try:
        await anyio.sleep(ORPHAN_GRACE_S + 1)
        removed = await photo_store.sweep(with_rows, ORPHAN_GRACE_S, before_start=True)
        if removed:
            log.info("removed %d orphan photo files (second look)", removed)
    except Exception:  # a sweep that fails is tried again at the next start
        log.exception("the second sweep of orphan photo files failed")


def create_app(
    settings: Settings,
    *,
    apply_migrations: bool = True,
    clock: Callable[[], datetime] = utcnow,
    backoff: Backoff = push_backoff,
    health_timeout: float = DB_TIMEOUT_S,
) -> Starlette:
    """Build the app for ``settings``; tests may pass the clock, the push backoff
    and how long /healthz waits for the database.

    The playbooks are loaded here, before anything listens, so an invalid
    playbook stops the server at once with the error that names the file.
    """
    passwords.configure(settings.password_memory_kib)
    library = playbook_book.load()
    sessions = Sessions(settings, clock)
    photo_store = open_store(settings)
    vapid = load_vapid(settings.data_dir, settings.vapid_private_key, settings.vapid_subject)
    deliverer = Deliverer(
        vapid,
        clock=clock,
        backoff=backoff,
        push_hosts=settings.push_hosts,
        channel_hosts=settings.channel_hosts,
    )
    hub = Hub()
    # Other app servers on the same PostgreSQL database wake this one's hub
    # at once, and it theirs; the hub's poll stays the fallback.
    notices = Notices.for_database(settings.database_url, hub.notify)

    def changed() -> None:
        hub.notify()
        if notices:
            notices.send()

    context = Context(
        settings=settings,
        library=library,
        photo_store=photo_store,
        photo_limiter=anyio.CapacityLimiter(settings.photo_workers),
        wake_delivery=deliverer.kick,
        changed=changed,
        clock=clock,
    )
    escalator = Escalator(context)
    reminders = Reminders(context)
    # New events anywhere (a report made here or on another server) may
    # bring a nearer deadline.
    hub.watch(escalator.kick)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with db.lifespan(settings, apply_migrations=apply_migrations):
            removed = await photo_store.sweep(with_rows)
            if removed:
                log.info("removed %d orphan photo files", removed)
            # Files published just before a crash are younger than the grace
            # now: they are looked at again once it has passed.
            second_sweep = asyncio.create_task(_sweep_later(photo_store), name="photo-sweep")
            # Deliveries left pending by a previous run are picked up at once.
            # The shipped playbooks published where the database lacks them.
            await library.start()
            await deliverer.start()
            await hub.start()
            if notices:
                await notices.start()
            await escalator.start()
            await reminders.start()
            try:
                yield
            finally:
                second_sweep.cancel()
                await reminders.stop()
                await escalator.stop()
                if notices:
                    await notices.stop()
                await hub.stop()
                await deliverer.stop()

    routes: list[BaseRoute] = [
        *health.routes,
        *session.routes,
        *sites.routes,
        *alert_channels.routes,
        *users.routes,
        *reports.routes,
        *followup.routes,
        *review.routes,
        *export.routes,
        *photos.routes,
        *push.routes,
        *report_pages.routes,
        *contact_pages.routes,
        *action_pages.routes,
        *admin_pages.routes,
        *playbook_pages.routes,
        *print_report.routes,
        *dashboard.routes,
        *playbook_routes.routes,
        *stream_routes.routes,
        *openapi.routes,
        *login_pages.routes,
        *app_shell.routes,
        *me_page.routes,
        Mount("/static", StaticAssets(directory=STATIC_DIR), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(StorableAddress),
        Middleware(GZipMiddleware, minimum_size=1024),
        Middleware(AuthMiddleware, sessions=sessions),
        Middleware(LanguageMiddleware, default=settings.default_language),
    ]
    app = Starlette(
        debug=settings.debug,
        routes=routes,
        middleware=middleware,
        exception_handlers=exception_handlers,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.context = context
    app.state.sessions = sessions
    app.state.playbooks = library
    app.state.vapid = vapid
    app.state.deliverer = deliverer
    app.state.hub = hub
    app.state.notices = notices
    app.state.escalator = escalator
    app.state.reminders = reminders
    app.state.health_timeout = health_timeout
    return app
