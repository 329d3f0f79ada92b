"""Migrations apply to empty databases, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
import sqlite3

import pytest

from server import db
from server import settings as settings_mod

EXPECTED_TABLES = {
    "site",
    "user",
    "user_site",
    "report",
    "report_step",
    "photo",
    "event",
    "analysis_answer",
    "corrective_action",
    "push_subscription",
    "push_delivery",
    "push_attempt",
}


async def test_migrations_apply_to_an_empty_sqlite_database_and_again_do_nothing(tmp_path):
    settings = settings_mod.load({}, data_dir=tmp_path, database_url="", secret_key="k")
    await db.migrate(settings)
    await db.migrate(settings)  # nothing pending: a no-op, not an error
    with sqlite3.connect(settings.sqlite_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables >= EXPECTED_TABLES
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_connections_turn_on_wal_foreign_keys_and_a_busy_timeout(tmp_path):
    settings = settings_mod.load({}, data_dir=tmp_path, database_url="", secret_key="k")
    creds = db.connection(settings)["credentials"]
    assert creds["journal_mode"] == "WAL"
    assert creds["foreign_keys"] == "ON"
    assert creds["busy_timeout"] >= 5000


def test_a_postgres_url_is_passed_through(tmp_path):
    url = "postgres://postgres@127.0.0.1:5432/onsite"
    settings = settings_mod.load({}, data_dir=tmp_path, database_url=url, secret_key="k")
    assert db.connection(settings) == url


def _postgres_base() -> str:
    url = (
        os.environ.get("ONSITE_TEST_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    )
    return url.rpartition("/")[0]


async def test_migrations_apply_to_an_empty_postgresql_database(tmp_path):
    asyncpg = pytest.importorskip("asyncpg")
    base = _postgres_base()
    try:
        admin = await asyncpg.connect(f"{base}/postgres", timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL at {base}: {exc}")
        pytest.skip(f"no PostgreSQL at {base} ({exc}); CI runs this test")
    name = f"onsite_m_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = settings_mod.load(
            {}, data_dir=tmp_path, database_url=f"{base}/{name}", secret_key="k"
        )
        await db.migrate(settings)
        await db.migrate(settings)
        conn = await asyncpg.connect(f"{base}/{name}")
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        finally:
            await conn.close()
        assert {r["tablename"] for r in rows} >= EXPECTED_TABLES
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
