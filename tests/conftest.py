"""Shared fixtures: a fresh app and database per test, and users to log in as.

Tests run on SQLite always. With ONSITE_TEST_DATABASE_URL pointing at a
PostgreSQL server (CI sets it), every test gets its own fresh database there
instead, made from that server and dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server import settings as settings_mod
from server.app import create_app
from server.auth import hash_password
from server.models import Role, Site, User

PG_ENV = "ONSITE_TEST_DATABASE_URL"
CSRF = {"X-Requested-With": "onsite"}
PASSWORD = "correct horse battery"


def postgres_server_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _admin_dsn(url: str) -> tuple[str, str]:
    """Split ``postgres://…/db`` into the server part and the database name."""
    base, _, _db = url.rpartition("/")
    return base, _db


@pytest.fixture
def database_url() -> Iterator[str]:
    """'' for SQLite in the data folder, or a fresh PostgreSQL database."""
    url = postgres_server_url()
    if not url:
        yield ""
        return
    import asyncio

    import asyncpg

    base, maintenance_db = _admin_dsn(url)
    name = f"onsite_t_{secrets.token_hex(6)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(f"{base}/{maintenance_db or 'postgres'}")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> settings_mod.Settings:
    return settings_mod.load(
        {}, data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret"
    )


@pytest.fixture
async def app(settings: settings_mod.Settings) -> AsyncIterator:
    application = create_app(settings)
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
