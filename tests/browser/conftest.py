"""A real server in a subprocess and Debian's Chromium driven by Playwright.

Chromium and the server are started once per test module;
between tests the server's data is put back to what the module started
with (one site, one guard), and every test gets a fresh browser profile.
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
import pytest
from PIL import Image

from server.settings import PUSH_HOSTS
from tests.conftest import postgres_server_url, run_async, run_postgres

CHROMIUM = os.environ.get("ONSITE_CHROMIUM", "/usr/bin/chromium")
# Let context.route() see the service worker's own requests too (Chromium
# only; read by the Playwright driver when it starts): the offline tests cut
# the network under whichever of page or worker is syncing.
os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
GUARD_PASSWORD = "guard-password-1"


def _free_port() -> int:
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
        self.port = _free_port()
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
                time.sleep(0.1)
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
        photo files gone, and the server running (a test may have stopped it)."""
        self.database.restore(self._start)
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

    def restore(self, rows: Rows) -> None:
        if self.sqlite:
            with contextlib.closing(sqlite3.connect(self.sqlite, timeout=30)) as conn:
                conn.execute("PRAGMA foreign_keys = OFF")  # per connection: order is free
                with conn:
                    for table in self._tables(conn):
                        conn.execute(f'DELETE FROM "{table}"')
                        for row in rows.get(table, ()):
                            marks = ", ".join("?" * len(row))
                            conn.execute(f'INSERT INTO "{table}" VALUES ({marks})', row)
            return
        self._postgres(lambda conn: self._pg_restore(conn, rows))

    def _tables(self, conn: sqlite3.Connection) -> list[str]:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
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

    async def _pg_restore(self, conn, rows: Rows) -> None:
        tables = await self._pg_tables(conn)
        async with conn.transaction():
            # Sequences go on counting: restored rows keep their low ids.
            await conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
            # Foreign keys are not checked while the rows go back (superuser
            # only, as the test server's postgres user is): any order will do.
            await conn.execute("SET LOCAL session_replication_role = replica")
            for table in tables:
                if rows.get(table):
                    await conn.copy_records_to_table(table, records=rows[table])


@pytest.fixture(scope="session")
def staffed_template(tmp_path_factory, template_database: str) -> Iterator[str]:
    """The migrated template with site north and its guard, made once by the CLI:
    every module's server starts from a copy of it."""
    data = tmp_path_factory.mktemp("staffed") / "data"
    with module_database(data, template_database, keep=True) as url:
        server = LiveServer(data, url)
        server.cli("site", "add", "north", "北苑")
        server.cli(
            "user", "add", "guard", "--role", "guard", "--site", "north", "--name", "王师傅",
            "--password-stdin", input=GUARD_PASSWORD + "\n",
        )  # fmt: skip
        yield str(data / "onsite.sqlite3") if not url else url.rpartition("/")[2]
    if url:
        run_postgres(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')


@pytest.fixture(scope="module")
def module_server(tmp_path_factory, staffed_template: str) -> Iterator[LiveServer]:
    """``onsite serve`` for a module's tests, with a site and a guard made by the CLI."""
    data = tmp_path_factory.mktemp("server") / "data"
    with module_database(data, staffed_template) as url:
        server = LiveServer(data, url)
        server.keep_as_start()
        server.start()
        try:
            yield server
        finally:
            server.stop()


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


@pytest.fixture
def live_server(module_server: LiveServer) -> LiveServer:
    """The module's server, its data as the module started."""
    module_server.reset()
    return module_server


# Per module, not per run: while Playwright's sync API runs it owns the
# thread's event loop, which the async tests outside browser/ need.
@pytest.fixture(scope="module")
def playwright():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Debian's chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    """Two camera-like JPEGs (a flat colour with a noisy middle) to attach."""
    paths = []
    for n, colour in enumerate([(200, 40, 40), (40, 90, 200)]):
        path = tmp_path / f"evidence-{n}.jpg"
        img = Image.new("RGB", (1600, 1200), colour)
        img.paste(Image.effect_noise((800, 600), 80).convert("RGB"), (400, 300))
        img.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


PHONE_OPTIONS = {
    "viewport": PHONE,
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",  # a guard's phone, as the server's pages assume
    # Playwright's own string predicates (wait_for_function) are compiled in
    # the page, which the app's Content-Security-Policy forbids; the policy
    # itself is checked with it on, page by page (test_policy.py).
    "bypass_csp": True,
}


@pytest.fixture
def phone_profile(playwright, tmp_path):
    """Opens a phone browser on one profile on disk: closing it and opening
    it again is a phone whose browser was closed and opened again."""
    profile = tmp_path / "profile"
    opened = []

    def open_phone(**options):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            **{**PHONE_OPTIONS, **options},
        )
        opened.append(context)
        return context

    yield open_phone
    for context in opened:
        with contextlib.suppress(Exception):  # already closed by the test
            context.close()


@pytest.fixture
def phone(browser):
    """A fresh phone-sized browser context (390x844, touch, zh-CN)."""
    context = browser.new_context(**PHONE_OPTIONS)
    try:
        yield context
    finally:
        context.close()


def log_in(
    page,
    url: str,
    *,
    offline_ready: bool = False,
    username: str = "guard",
    password: str = GUARD_PASSWORD,
) -> None:
    """Log a user (the guard unless told) in through the login form; with
    ``offline_ready``, also wait until the service worker has kept every
    page needed offline."""
    page.goto(f"{url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{url}/")
    if offline_ready:
        page.wait_for_selector("html[data-offline-ready=true]", state="attached", timeout=30_000)


def add_user(server: LiveServer, username: str, role: str, name: str) -> str:
    """A user of site north made through the CLI; their password."""
    password = f"{username}-password-1"
    server.cli(
        "user", "add", username, "--role", role, "--site", "north", "--name", name,
        "--password-stdin", input=password + "\n",
    )  # fmt: skip
    return password


@contextlib.contextmanager
def api_session(server: LiveServer, username: str, password: str) -> Iterator[httpx.Client]:
    """An API client logged in as ``username``."""
    with httpx.Client(base_url=server.url, headers={"X-Requested-With": "onsite"}) as client:
        response = client.post("/api/session", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        yield client


def wait_until(page, script: str, arg=None, timeout: float = 10.0) -> None:
    """Wait until ``script`` (an async function may be) answers truthy.

    ``page.wait_for_function`` does not await a promise: an async predicate
    is truthy at once, and the wait waits for nothing. ``evaluate`` does."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {script}"
        page.wait_for_timeout(50)


def screenshot(page, name: str) -> None:
    """Keep a phone-size screenshot when ONSITE_SCREENSHOTS names a folder."""
    folder = os.environ.get("ONSITE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


SMALL_TARGETS_JS = """
() => [...document.querySelectorAll('a, button, input:not([type=hidden]), select, textarea')]
  .filter(el => el.offsetParent !== null && !el.closest('.skip'))
  // A visually hidden input is operated through its (large) label.
  .filter(el => !el.classList.contains('visually-hidden'))
  .map(el => { const r = el.getBoundingClientRect();
               return {tag: el.tagName, text: (el.innerText || el.name || '').trim().slice(0, 30),
                       w: r.width, h: r.height}; })
  .filter(t => t.w < 44 || t.h < 44)
"""
