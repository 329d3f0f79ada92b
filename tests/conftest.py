"""Shared fixtures: a fresh app and database per test, and users to log in as.

Tests run on SQLite always. With ONSITE_TEST_DATABASE_URL pointing at a
PostgreSQL server (CI sets it), every test gets its own fresh database there
instead, made from that server and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server import db, passwords
from server import settings as settings_mod
from server.app import create_app
from server.models import Role, Site, User
from server.passwords import hash_password

T = TypeVar("T")
PG_ENV = "ONSITE_TEST_DATABASE_URL"
CSRF = {"X-Requested-With": "onsite"}
PASSWORD = "correct horse battery"
# Password hashes at a test's cost (64 KiB, not 64 MiB): a login takes a
# fraction of a millisecond instead of a tenth of a second. Subprocesses
# (the CLI, live servers) read it from the environment.
CHEAP_HASH_KIB = 64
os.environ["ONSITE_PASSWORD_MEMORY_KIB"] = str(CHEAP_HASH_KIB)
passwords.configure(CHEAP_HASH_KIB)


def postgres_server_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _admin_dsn(url: str) -> tuple[str, str]:
    """Split ``postgres://…/db`` into the server part and the database name."""
    base, _, _db = url.rpartition("/")
    return base, _db


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end from sync code, in a thread of its own:
    Playwright's sync API may own this thread's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run_postgres(sql: str) -> None:
    """Run one statement on the test PostgreSQL server's maintenance database."""
    import asyncpg

    base, maintenance_db = _admin_dsn(postgres_server_url() or "")

    async def run() -> None:
        conn = await asyncpg.connect(f"{base}/{maintenance_db or 'postgres'}")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_async(run())


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database with every migration applied, made once per test run:
    each test starts from a copy of it instead of migrating again."""
    url = postgres_server_url()
    if not url:
        path = tmp_path_factory.mktemp("template") / "onsite.sqlite3"
        migrated = settings_mod.load({}, data_dir=path.parent, database_url=f"sqlite://{path}")
        run_async(db.migrate(migrated))
        yield str(path)
        return
    base, _ = _admin_dsn(url)
    name = f"onsite_tpl_{secrets.token_hex(6)}"
    run_postgres(f'CREATE DATABASE "{name}"')
    try:
        migrated = settings_mod.load(
            {}, data_dir=tmp_path_factory.mktemp("template"), database_url=f"{base}/{name}"
        )
        run_async(db.migrate(migrated))
        yield name
    finally:
        run_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(tmp_path: Path, template_database: str) -> Iterator[str]:
    """A migrated database of this test's own: '' for SQLite in the data
    folder (``tmp_path/data``), or a fresh PostgreSQL database."""
    url = postgres_server_url()
    if not url:
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        shutil.copyfile(template_database, data / "onsite.sqlite3")
        yield ""
        return
    base, _ = _admin_dsn(url)
    name = f"onsite_t_{secrets.token_hex(6)}"
    run_postgres(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        yield f"{base}/{name}"
    finally:
        run_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> settings_mod.Settings:
    return settings_mod.load(
        {},
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret",
        password_memory_kib=CHEAP_HASH_KIB,
    )


@pytest.fixture
async def app(settings: settings_mod.Settings) -> AsyncIterator:
    application = create_app(settings, apply_migrations=False)  # migrated already
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class World:
    """Two sites and one user per role on the first, a guard on the second."""

    north: Site
    south: Site
    guard: User
    technician: User
    supervisor: User
    admin: User
    south_guard: User


async def make_user(username: str, role: Role, *sites: Site) -> User:
    user = await User.create(
        username=username,
        role=role,
        display_name=username.title(),
        password_hash=hash_password(PASSWORD),
    )
    if sites:
        await user.sites.add(*sites)
    return user


@pytest.fixture
async def world(app) -> World:
    north = await Site.create(code="north", name="北苑")
    south = await Site.create(code="south", name="南苑")
    return World(
        north=north,
        south=south,
        guard=await make_user("guard", Role.GUARD, north),
        technician=await make_user("tech", Role.TECHNICIAN, north),
        supervisor=await make_user("super", Role.SUPERVISOR, north),
        admin=await make_user("admin", Role.ADMIN),
        south_guard=await make_user("southguard", Role.GUARD, south),
    )


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    response = await client.post(
        "/api/session", json={"username": username, "password": password}, headers=CSRF
    )
    assert response.status_code == 200, response.text
    return response
