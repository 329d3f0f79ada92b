"""The application factory: routes and middleware as lists, and a lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from server import db
from server import playbooks as playbook_lib
from server.auth import AuthMiddleware, Sessions
from server.errors import exception_handlers
from server.i18n import LanguageMiddleware
from server.routes import openapi, pages, report_pages, reports, session, sites
from server.routes import playbooks as playbook_routes
from server.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent.parent / "pwa" / "static"
log = logging.getLogger("onsite")


def create_app(settings: Settings, *, apply_migrations: bool = True) -> Starlette:
    """Build the app for ``settings``.

    The playbooks are loaded here, before anything listens, so an invalid
    playbook stops the server at once with the error that names the file.
    """
    library = playbook_lib.load()
    sessions = Sessions(settings.secret_key, settings.session_days)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with db.lifespan(settings, apply_migrations=apply_migrations):
            yield

    routes: list[BaseRoute] = [
        *session.routes,
        *sites.routes,
        *reports.routes,
        *report_pages.routes,
        *playbook_routes.routes,
        *openapi.routes,
        *pages.routes,
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
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
    return app
