"""Shared fixtures: a fresh app and database per test, and users to log in as.

Tests run on SQLite always. With ONSITE_TEST_DATABASE_URL pointing at a
PostgreSQL server (CI sets it), every test gets its own fresh database there
instead, made from that server and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from asgi_lifespan import LifespanManager
from jsonschema import Draft202012Validator

from server import db, passwords
from server import settings as settings_mod
from server.app import create_app
from server.models import Role, Site, User
from server.openapi import document
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


@pytest.fixture
async def empty_postgres(tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards: on the
    test server (ONSITE_TEST_DATABASE_URL), else the usual local one. Outside
    CI a test that needs it is skipped when there is none; in CI it fails."""
    import asyncpg

    base = _admin_dsn(postgres_server_url() or "postgres://postgres@127.0.0.1:5432/postgres")[0]
    try:
        admin = await asyncpg.connect(f"{base}/postgres", timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL at {base}: {exc}")
        pytest.skip(f"no PostgreSQL at {base} ({exc}); CI runs this test")
    name = f"onsite_e_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


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
        # The test push services listen on 127.0.0.1.
        push_hosts=(*settings_mod.PUSH_HOSTS.split(","), "127.0.0.1"),
    )


class Clock:
    """The app's clock in tests: real time, moved on by :meth:`advance`
    instead of sleeping (a Retry-After, a backoff, a due date)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(settings: settings_mod.Settings, clock: Clock) -> AsyncIterator:
    application = create_app(settings, apply_migrations=False, clock=clock)  # migrated already
    # Shutdown waits for the push outcomes to be written (up to 5 s itself):
    # once in 889 tests on PostgreSQL it passed asgi_lifespan's default 5 s.
    async with LifespanManager(application, shutdown_timeout=20):
        yield application


def api_client(app) -> httpx.AsyncClient:
    """A client of the app whose every API answer is checked against the
    OpenAPI document: its status is documented, its body matches."""
    if not hasattr(app.state, "test_contract"):
        app.state.test_contract = Contract(document(app.routes))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        event_hooks={"response": [app.state.test_contract.check]},
    )


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(app) as c:
        yield c


@pytest.fixture
async def as_user(app) -> AsyncIterator[Callable[[str], Awaitable[httpx.AsyncClient]]]:
    """``await as_user("super")``: that user's own logged-in client (one per
    name, as on their own phone), closed after the test."""
    opened: dict[str, httpx.AsyncClient] = {}

    async def get(username: str) -> httpx.AsyncClient:
        if username not in opened:
            opened[username] = api_client(app)
            await login(opened[username], username)
        return opened[username]

    yield get
    for c in opened.values():
        await c.aclose()


class Contract:
    """Holds answers to what /api/openapi.json says of them."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.paths = [
            (re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$"), ops)
            for path, ops in doc["paths"].items()
        ]

    async def check(self, response: httpx.Response) -> None:
        request = response.request
        op = self.operation(request.method.lower(), request.url.path)
        if op is None:  # not an API operation (a page, an unknown path, a 405)
            return
        where = f"{request.method} {request.url.path} -> {response.status_code}"
        answer = op["responses"].get(str(response.status_code))
        assert answer is not None, f"{where} is not documented"
        documented = answer.get("content", {})
        ctype = response.headers.get("content-type", "").split(";")[0]
        if ctype == "application/json" and response.status_code != 204:
            assert "application/json" in documented, f"{where}: JSON is not documented"
            await response.aread()
            schema = {**documented["application/json"]["schema"], **self.doc}
            errors = list(Draft202012Validator(schema).iter_errors(response.json()))
            assert not errors, f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}"

    def operation(self, method: str, path: str) -> dict | None:
        for pattern, ops in self.paths:
            if pattern.match(path):
                return ops.get(method)
        return None


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
