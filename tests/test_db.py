"""Migrations apply to empty databases, SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3

from server import db
from server import settings as settings_mod

EXPECTED_TABLES = {
    "alert_channel",
    "site_contact",
    "admin_log",
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


async def test_migrations_apply_to_an_empty_postgresql_database(tmp_path, empty_postgres):
    import asyncpg

    settings = settings_mod.load({}, data_dir=tmp_path, database_url=empty_postgres, secret_key="k")
    await db.migrate(settings)
    await db.migrate(settings)
    conn = await asyncpg.connect(empty_postgres)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    finally:
        await conn.close()
    assert {r["tablename"] for r in rows} >= EXPECTED_TABLES


async def test_reports_from_before_escalation_are_not_escalated_after_the_upgrade(tmp_path):
    """Migration 0002 stamps old reports, so the first start after an upgrade
    does not alert every admin about every report ever left unacknowledged."""
    from tortoise.migrations.api import migrate as tortoise_migrate

    settings = settings_mod.load({}, data_dir=tmp_path, database_url="", secret_key="k")
    await tortoise_migrate(config=db.config(settings), target="onsite.0001_initial")
    with sqlite3.connect(settings.sqlite_path) as conn:
        conn.execute("INSERT INTO site (code, name, created_at) VALUES ('n', 'N', '2026-01-01')")
        conn.execute(
            "INSERT INTO user (username, display_name, role, password_hash, is_active,"
            " session_version, created_at) VALUES ('g', 'G', 'guard', 'x', 1, 1, '2026-01-01')"
        )
        conn.execute(
            "INSERT INTO report (id, site_id, reporter_id, incident_type, playbook_version,"
            " severity, status, content_hash, occurred_at, received_at, location_text, notes,"
            " closing_note, updated_at) VALUES ('00000000-0000-4000-8000-000000000001', 1, 1,"
            " 'x', 'v', 'critical', 'new', 'h', '2026-01-01', '2026-01-01 08:00:00', '', '', '',"
            " '2026-01-01')"
        )
    await db.migrate(settings)
    with sqlite3.connect(settings.sqlite_path) as conn:
        (stamp,) = conn.execute("SELECT escalated_at FROM report").fetchone()
    assert stamp is not None and stamp.startswith("2026-01-01 08:00:00")


async def test_two_servers_migrating_one_postgresql_database_at_once_both_start(
    tmp_path, empty_postgres
):
    """``onsite serve`` migrates first: two app servers started together take
    turns under an advisory lock, so neither fails on the other's tables."""
    import asyncio
    import sys

    script = (
        "import asyncio, sys; from pathlib import Path; from server import db, settings; "
        "s = settings.load({}, data_dir=Path(sys.argv[1]), database_url=sys.argv[2], "
        "secret_key='k'); asyncio.run(db.migrate(s))"
    )
    runs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            str(tmp_path / name),
            empty_postgres + "?maxsize=3",
            stderr=asyncio.subprocess.PIPE,
        )
        for name in ("a", "b")
    ]
    for run in runs:
        _, err = await run.communicate()
        assert run.returncode == 0, err.decode()[-2000:]
