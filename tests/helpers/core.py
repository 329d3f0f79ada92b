"""The plain helpers under every test: the test databases, the API client that
holds answers to the OpenAPI document, users and logging in.

Importing this sets password hashes to a test's cost (64 KiB, not 64 MiB): a
login takes a fraction of a millisecond instead of a tenth of a second.
Subprocesses (the CLI, live servers) read it from the environment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from jsonschema import Draft202012Validator

from server import passwords
from server.models import Role, Site, User
from server.openapi import document
from server.passwords import hash_password

T = TypeVar("T")
PG_ENV = "ONSITE_TEST_DATABASE_URL"
CSRF = {"X-Requested-With": "onsite"}
PASSWORD = "correct horse battery"
CHEAP_HASH_KIB = 64
os.environ["ONSITE_PASSWORD_MEMORY_KIB"] = str(CHEAP_HASH_KIB)
passwords.configure(CHEAP_HASH_KIB)


def postgres_server_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def admin_dsn(url: str) -> tuple[str, str]:
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

    base, maintenance_db = admin_dsn(postgres_server_url() or "")

    async def run() -> None:
        conn = await asyncpg.connect(f"{base}/{maintenance_db or 'postgres'}")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_async(run())


class Clock:
    """The app's clock in tests: real time, moved on by :meth:`advance`
    instead of sleeping (a Retry-After, a backoff, a due date)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def api_client(app) -> httpx.AsyncClient:
    """A client of the app whose every API answer is checked against the
    OpenAPI document: its status is documented, its body matches."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        event_hooks={"response": [contract(app).check]},
    )


_CONTRACT: list[Contract] = []


def contract(app) -> Contract:
    """The OpenAPI contract, written once per test process: every app of a
    run has the same routes, so the same document."""
    if not _CONTRACT:
        _CONTRACT.append(Contract(document(app.routes)))
    return _CONTRACT[0]


class Contract:
    """Holds answers to what /api/openapi.json says of them."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.paths = [
            (re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$"), ops)
            for path, ops in doc["paths"].items()
        ]
        # One validator per operation and status (the document is made once).
        self._validators: dict[tuple[int, str], Draft202012Validator] = {}

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
            validator = self._validator(op, str(response.status_code), documented)
            errors = list(validator.iter_errors(response.json()))
            assert not errors, f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}"

    def _validator(self, op: dict, status: str, documented: dict) -> Draft202012Validator:
        key = (id(op), status)
        if key not in self._validators:
            schema = {**documented["application/json"]["schema"], **self.doc}
            self._validators[key] = Draft202012Validator(schema)
        return self._validators[key]

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


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    response = await client.post(
        "/api/session", json={"username": username, "password": password}, headers=CSRF
    )
    assert response.status_code == 200, response.text
    return response
