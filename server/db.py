"""Tortoise ORM configuration, migrations and the database lifespan.

SQLite in the data folder is the embedded default (WAL, foreign keys, a busy
timeout so concurrent writers wait instead of failing); PostgreSQL is the
same code with another URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


# Any fixed number: the key of the PostgreSQL advisory lock around migrating.
MIGRATION_LOCK = 0x0_0517E


# Tortoise's own options in a database URL, which asyncpg would refuse.
_TORTOISE_OPTIONS = {"minsize", "maxsize", "max_queries", "max_inactive_connection_lifetime"}


def _libpq_url(url: str) -> str:
    parts = urlsplit(url.replace("postgresql://", "postgres://", 1))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in _TORTOISE_OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def migrate(settings: Settings) -> None:
    """Apply every pending migration in ``migrations/``.

    On PostgreSQL under an advisory lock: several app servers started at once
    (``onsite serve`` migrates first) apply each migration once, the others
    waiting, then finding nothing pending. SQLite is one server's database.
    """
    url = settings.database_url
    lock = None
    if url.startswith(("postgres://", "postgresql://")):
        import asyncpg

        lock = await asyncpg.connect(_libpq_url(url))
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await tortoise_migrate(config=config(settings))
    finally:
        await Tortoise.close_connections()
        if lock is not None:
            await lock.close()  # the session's lock goes with it


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
