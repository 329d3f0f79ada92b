"""Tortoise ORM configuration, migrations and the database lifespan.

SQLite in the data folder is the embedded default (WAL, foreign keys, a busy
timeout so concurrent writers wait instead of failing); PostgreSQL is the
same code with another URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate as tortoise_migrate

from server.settings import Settings

APP_LABEL = "onsite"
MODELS = ["server.models"]
MIGRATIONS = "migrations"


def connection(settings: Settings) -> str | dict[str, Any]:
    """The Tortoise connection for ``settings``: a URL, or SQLite with its pragmas."""
    url = settings.database_url
    if url and not url.startswith("sqlite"):
        return url
    path = url.split("://", 1)[1] if url else str(settings.sqlite_path)
    return {
        "engine": "tortoise.backends.sqlite",
        "credentials": {
            "file_path": path,
            "journal_mode": "WAL",
            "foreign_keys": "ON",
            "busy_timeout": 10000,
            # WAL makes NORMAL safe against corruption; it may only lose the
            # last transactions on power loss, never on a process crash.
            "synchronous": "NORMAL",
        },
    }


def config(settings: Settings) -> dict[str, Any]:
    """The Tortoise config dict: one connection, one app, its migrations."""
    return {
        "connections": {"default": connection(settings)},
        "apps": {
            APP_LABEL: {
                "models": MODELS,
                "migrations": MIGRATIONS,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def migrate(settings: Settings) -> None:
    """Apply every pending migration in ``migrations/``."""
    try:
        await tortoise_migrate(config=config(settings))
    finally:
        await Tortoise.close_connections()


@asynccontextmanager
async def lifespan(settings: Settings, *, apply_migrations: bool) -> AsyncIterator[None]:
    """Open the database for the app's life; apply migrations first when asked."""
    if apply_migrations:
        await migrate(settings)
    # The global fallback lets request tasks see the context that the lifespan
    # task made (uvicorn and test transports run them in different tasks).
    await Tortoise.init(config=config(settings), _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()


def __getattr__(name: str) -> Any:
    # ``server.db.TORTOISE_ORM`` is the dotted path Tortoise's own CLI takes
    # (``tortoise -c server.db.TORTOISE_ORM makemigrations``); computed on use
    # so that importing this module reads no settings.
    if name == "TORTOISE_ORM":
        from server.settings import load

        return config(load())
    raise AttributeError(name)
