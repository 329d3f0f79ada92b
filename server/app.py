"""The application factory: routes and middleware as lists, and a lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from server import db
from server import playbooks as playbook_lib
from server.auth import AuthMiddleware, Sessions
from server.build import STATIC_DIR
from server.errors import exception_handlers
from server.i18n import LanguageMiddleware
from server.models import Photo
from server.photo_store import PhotoStore
from server.push import Deliverer, load_vapid
from server.routes import openapi, pages, photos, push, report_pages, reports, session, sites
from server.routes import playbooks as playbook_routes
from server.settings import Settings


class StaticAssets(StaticFiles):
    """Static files that the browser checks again (ETag) before each use.

    Modules import each other without a version in the URL, so a heuristic
    HTTP cache could mix two builds; with the service worker in place the
    files come from its per-build cache instead.
    """

    async def get_response(self, path: str, scope):  # noqa: ANN001, ANN201
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


log = logging.getLogger("onsite")


def create_app(settings: Settings, *, apply_migrations: bool = True) -> Starlette:
    """Build the app for ``settings``.

    The playbooks are loaded here, before anything listens, so an invalid
    playbook stops the server at once with the error that names the file.
    """
    library = playbook_lib.load()
    sessions = Sessions(settings.secret_key, settings.session_days)
    photo_store = PhotoStore(settings.data_dir / "photos")
    vapid = load_vapid(settings.data_dir, settings.vapid_private_key, settings.vapid_subject)
    deliverer = Deliverer(vapid)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with db.lifespan(settings, apply_migrations=apply_migrations):
            known = set(await Photo.all().values_list("id", flat=True))
            removed = await anyio.to_thread.run_sync(photo_store.remove_orphans, known)
            if removed:
                log.info("removed %d orphan photo files", removed)
            # Deliveries left pending by a previous run are picked up at once.
            await deliverer.start()
            try:
                yield
            finally:
                await deliverer.stop()

    routes: list[BaseRoute] = [
        *session.routes,
        *sites.routes,
        *reports.routes,
        *photos.routes,
        *push.routes,
        *report_pages.routes,
        *playbook_routes.routes,
        *openapi.routes,
        *pages.routes,
        Mount("/static", StaticAssets(directory=STATIC_DIR), name="static"),
    ]
    middleware = [
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
    app.state.sessions = sessions
    app.state.playbooks = library
    app.state.photo_store = photo_store
    app.state.vapid = vapid
    app.state.deliverer = deliverer
    app.state.photo_limiter = anyio.CapacityLimiter(settings.photo_workers)
    return app
