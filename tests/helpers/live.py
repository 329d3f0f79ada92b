"""``onsite serve`` in a subprocess, its database seen directly, and its API from outside.

Browser tests, the crash test and the multi-server tests run the real server
as a user would; :class:`LiveServer` starts it on a free port and puts its
rows back between tests.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from server.settings import PUSH_HOSTS
from tests.helpers.core import CSRF, postgres_server_url, run_async, run_postgres

GUARD_PASSWORD = "guard-password-1"
# The administrator every live server starts with (besides site north and its
# guard): staff for a test are added through the API in its name, which takes
# milliseconds where a CLI process took a second.
ADMIN = "root"
ADMIN_PASSWORD = "admin-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``onsite serve`` on a free port, with a site and a guard made by the CLI."""

    def __init__(self, data_dir: Path, database_url: str, root: Path | None = None) -> None:
        self.root = root  # another checkout of the app (a "new version"), or this one
        self.env = {
            **os.environ,
            "ONSITE_DATA_DIR": str(data_dir),
            "ONSITE_DATABASE_URL": database_url,
            # The test push services listen on 127.0.0.1.
            "ONSITE_PUSH_HOSTS": f"{PUSH_HOSTS},127.0.0.1",
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "server.log"
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/login", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not start in 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def keep_as_start(self) -> None:
        """Remember the data as it is now: :meth:`reset` goes back to it."""
        self._start = self.database.snapshot()

    def reset(self) -> None:
        """The data as the module started (see :meth:`keep_as_start`), the
        photo files gone, and the server running (a test may have stopped it).

        The id sequences go back only for a server about to start: a running
        one's stream hub has seen the ids so far and waits for the next (ids
        that went back would fall below its watermark, unseen), while a new
        one starts at the highest id in the table and would take the next id
        past a gap for a rolled-back transaction, and wait out its grace."""
        self.database.restore(self._start, ids_back=not self.running)
        photos = Path(self.env["ONSITE_DATA_DIR"]) / "photos"
        if photos.exists():
            for child in photos.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        if not self.running:
            self.start()

    @property
    def database(self) -> Database:
        return Database(self.env["ONSITE_DATABASE_URL"], Path(self.env["ONSITE_DATA_DIR"]))


Rows = dict[str, list[tuple]]


class Database:
    """Direct access to a live server's database, to put its rows back."""

    KEEP = {"tortoise_migrations"}

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.sqlite = None if url else data_dir / "onsite.sqlite3"

    def snapshot(self) -> Rows:
        if self.sqlite:
            with contextlib.closing(sqlite3.connect(self.sqlite)) as conn:
                return {
                    t: conn.execute(f'SELECT * FROM "{t}"').fetchall() for t in self._tables(conn)
                }
        return self._postgres(self._pg_snapshot)

    def restore(self, rows: Rows, *, ids_back: bool = True) -> None:
        """The rows of ``rows``; with ``ids_back`` the id sequences too (new
        ids go on from the restored rows), else they go on from where they are."""
        if self.sqlite:
            with contextlib.closing(sqlite3.connect(self.sqlite, timeout=30)) as conn:
                conn.execute("PRAGMA foreign_keys = OFF")  # per connection: order is free
                with conn:
                    for table in self._tables(conn):
                        if table == "sqlite_sequence" and not ids_back:
                            continue
                        conn.execute(f'DELETE FROM "{table}"')
                        for row in rows.get(table, ()):
                            marks = ", ".join("?" * len(row))
                            conn.execute(f'INSERT INTO "{table}" VALUES ({marks})', row)
            return
        self._postgres(lambda conn: self._pg_restore(conn, rows, ids_back))

    def _tables(self, conn: sqlite3.Connection) -> list[str]:
        # sqlite_sequence too (see LiveServer.reset for when it goes back).
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND (name NOT LIKE 'sqlite_%' OR name = 'sqlite_sequence')"
        ).fetchall()
        return [n for (n,) in names if n not in self.KEEP]

    def _postgres(self, work):
        import asyncpg

        async def run():
            conn = await asyncpg.connect(self.url)
            try:
                return await work(conn)
            finally:
                await conn.close()

        return run_async(run())

    async def _pg_tables(self, conn) -> list[str]:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return [r["tablename"] for r in rows if r["tablename"] not in self.KEEP]

    async def _pg_snapshot(self, conn) -> Rows:
        return {
            t: [tuple(r) for r in await conn.fetch(f'SELECT * FROM "{t}"')]
            for t in await self._pg_tables(conn)
        }

    async def _pg_restore(self, conn, rows: Rows, ids_back: bool) -> None:
        tables = await self._pg_tables(conn)
        async with conn.transaction():
            await conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
            # Foreign keys are not checked while the rows go back (superuser
            # only, as the test server's postgres user is): any order will do.
            await conn.execute("SET LOCAL session_replication_role = replica")
            for table in tables:
                if rows.get(table):
                    await conn.copy_records_to_table(table, records=rows[table])
            # TRUNCATE leaves the sequences where they are (see LiveServer.reset).
            if not ids_back:
                return
            await conn.execute(
                """DO $$ DECLARE t record; BEGIN
                FOR t IN SELECT c.relname AS tab, s.relname AS seq
                  FROM pg_class s JOIN pg_depend d ON d.objid = s.oid
                  JOIN pg_class c ON c.oid = d.refobjid
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
                  WHERE s.relkind = 'S' AND a.attname = 'id' LOOP
                  EXECUTE format(
                    'SELECT setval(%L, COALESCE((SELECT max(id) FROM %I), 0) + 1, false)',
                    t.seq, t.tab);
                END LOOP; END $$"""
            )


@contextlib.contextmanager
def module_database(data: Path, template: str, *, keep: bool = False) -> Iterator[str]:
    """A copy of ``template``: SQLite in ``data``, or a PostgreSQL database
    (dropped afterwards unless ``keep``)."""
    data.mkdir(parents=True, exist_ok=True)
    url = postgres_server_url()
    if not url:
        shutil.copyfile(template, data / "onsite.sqlite3")
        yield ""
        return
    base = url.rpartition("/")[0]
    name = f"onsite_b_{secrets.token_hex(6)}"
    run_postgres(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield f"{base}/{name}"
    finally:
        if not keep:
            run_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def staff_the(server: LiveServer) -> None:
    """Site north, its guard and the administrator, made by the CLI as an
    installer would (once per run: every server starts from a copy)."""
    server.cli("site", "add", "north", "北苑")
    server.cli(
        "user", "add", "guard", "--role", "guard", "--site", "north", "--name", "王师傅",
        "--password-stdin", input=GUARD_PASSWORD + "\n",
    )  # fmt: skip
    server.cli(
        "user", "add", ADMIN, "--role", "admin", "--name", "管理员",
        "--password-stdin", input=ADMIN_PASSWORD + "\n",
    )  # fmt: skip


@contextlib.contextmanager
def api_session(server: LiveServer, username: str, password: str) -> Iterator[httpx.Client]:
    """An API client logged in as ``username``."""
    with httpx.Client(base_url=server.url, headers=CSRF) as client:
        response = client.post("/api/session", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        yield client


def add_user(
    server: LiveServer,
    username: str,
    role: str,
    name: str,
    password: str | None = None,
    sites: tuple[str, ...] = ("north",),
) -> str:
    """A user of site north (unless ``sites`` says otherwise), added through
    the API by the administrator; their password (``<username>-password-1``
    unless given)."""
    password = password or f"{username}-password-1"
    body = {"display_name": name, "role": role, "sites": list(sites)}
    with api_session(server, ADMIN, ADMIN_PASSWORD) as admin:
        added = admin.put(f"/api/users/{username}", json=body)
        assert added.status_code == 201, added.text
        chosen = admin.put(f"/api/users/{username}/password", json={"password": password})
        assert chosen.status_code == 200, chosen.text
    return password
