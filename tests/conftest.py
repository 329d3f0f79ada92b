"""Shared fixtures: a fresh app and database per test, and users to log in as.

Tests run on SQLite always. With ONSITE_TEST_DATABASE_URL pointing at a
PostgreSQL server (CI sets it), every test gets its own fresh database there
instead, made from that server and dropped afterwards. The plain helpers
behind them are in :mod:`tests.helpers`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server import db
from server import settings as settings_mod
from server.app import create_app
from server.models import Role, Site
from tests.helpers.core import (  # noqa: F401 (imported by tests from here)
    CHEAP_HASH_KIB,
    CSRF,
    PASSWORD,
    Clock,
    World,
    admin_dsn,
    api_client,
    login,
    make_user,
    postgres_server_url,
    run_async,
    run_postgres,
)
from tests.helpers.live import LiveServer, module_database, staff_the
from tests.helpers.reports import report_body


@pytest.fixture
async def empty_postgres(tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards: on the
    test server (ONSITE_TEST_DATABASE_URL), else the usual local one. Outside
    CI a test that needs it is skipped when there is none; in CI it fails."""
    import asyncpg

    base = admin_dsn(postgres_server_url() or "postgres://postgres@127.0.0.1:5432/postgres")[0]
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


async def prepare(settings: settings_mod.Settings) -> None:
    """Migrated, and the shipped playbooks published (as every start does)."""
    from tortoise import Tortoise

    from server import playbook_book

    await db.migrate(settings)
    await Tortoise.init(config=db.config(settings))
    try:
        await playbook_book.load().start()
    finally:
        await Tortoise.close_connections()


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database with every migration applied, made once per test run:
    each test starts from a copy of it instead of migrating again."""
    url = postgres_server_url()
    if not url:
        path = tmp_path_factory.mktemp("template") / "onsite.sqlite3"
        migrated = settings_mod.load({}, data_dir=path.parent, database_url=f"sqlite://{path}")
        run_async(prepare(migrated))
        yield str(path)
        return
    base, _ = admin_dsn(url)
    name = f"onsite_tpl_{secrets.token_hex(6)}"
    run_postgres(f'CREATE DATABASE "{name}"')
    try:
        migrated = settings_mod.load(
            {}, data_dir=tmp_path_factory.mktemp("template"), database_url=f"{base}/{name}"
        )
        run_async(prepare(migrated))
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
    base, _ = admin_dsn(url)
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


@pytest.fixture
def body(app) -> dict:
    """A whole report of a lift entrapment at north, as a guard's phone sends it."""
    return report_body(app)


@pytest.fixture(scope="session")
def staffed_template(tmp_path_factory, template_database: str) -> Iterator[str]:
    """The migrated template with site north, its guard and the administrator,
    made once by the CLI: every live server starts from a copy of it."""
    data = tmp_path_factory.mktemp("staffed") / "data"
    with module_database(data, template_database, keep=True) as url:
        staff_the(LiveServer(data, url))
        yield str(data / "onsite.sqlite3") if not url else url.rpartition("/")[2]
    if url:
        run_postgres(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 and a free port, for the whole run."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
