"""The onsite command: help, sites, users, demo, and clear errors."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from tortoise import Tortoise

from server import db, logs
from server.auth import authenticate
from server.cli import main
from server.photo_store import DISPLAY, THUMB, FilePhotoStore
from server.settings import load


@pytest.fixture
def run(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("ONSITE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ONSITE_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def can_log_in(username: str, password: str) -> bool:
    async def check() -> bool:
        await Tortoise.init(config=db.config(load()))
        try:
            return await authenticate(username, password) is not None
        finally:
            await Tortoise.close_connections()

    return asyncio.run(check())


def test_help_lists_every_command(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("serve", "migrate", "site", "user", "demo", "backup", "restore", "playbooks"):
        assert command in result.output


def test_user_add_prints_a_password_that_works(run):
    assert run("site", "add", "north", "北苑").exit_code == 0
    result = run("user", "add", "wang", "--role", "guard", "--site", "north")
    assert result.exit_code == 0, result.output
    password = result.output.split("password: ")[1].strip()
    assert can_log_in("wang", password)


def test_user_add_reads_the_password_from_stdin(run):
    run("site", "add", "north", "北苑")
    result = run(
        "user",
        "add",
        "li",
        "--role",
        "supervisor",
        "--site",
        "north",
        "--password-stdin",
        input="a long secret\n",
    )
    assert result.exit_code == 0
    assert "password:" not in result.output
    assert can_log_in("li", "a long secret")


def test_a_short_stdin_password_is_refused(run):
    run("site", "add", "north", "北苑")
    result = run(
        "user",
        "add",
        "li",
        "--role",
        "guard",
        "--site",
        "north",
        "--password-stdin",
        input="short\n",
    )
    assert result.exit_code != 0
    assert "at least 8" in result.output


def test_bad_arguments_give_a_message_and_a_non_zero_exit(run):
    run("site", "add", "north", "北苑")
    cases = [
        (("user", "add", "x", "--role", "wizard", "--site", "north"), "wizard"),
        (("user", "add", "x", "--role", "guard", "--site", "nowhere"), "--site: no site 'nowhere'"),
        (("user", "add", "Bad Name", "--role", "guard", "--site", "north"), "USERNAME: 1 to 64"),
        (("user", "add", "x", "--role", "guard"), "--site"),
        (("site", "add", "north", "again"), "exists already"),
        (("site", "add", "bad code!", "x"), "CODE: 1 to 32 letters, digits"),
        (("user", "revoke-sessions", "ghost"), "no such user"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)


def test_a_duplicate_user_is_refused(run):
    run("site", "add", "north", "北苑")
    run("user", "add", "wang", "--role", "guard", "--site", "north")
    result = run("user", "add", "wang", "--role", "guard", "--site", "north")
    assert result.exit_code != 0
    assert "exists already" in result.output


def test_demo_makes_one_user_per_role_and_prints_working_passwords(run):
    result = run("demo")
    assert result.exit_code == 0
    lines = [
        ln.split()
        for ln in result.output.splitlines()
        if ln.split()[:1] in (["guard"], ["tech"], ["super"], ["admin"])
    ]
    assert {ln[1] for ln in lines} == {"guard", "technician", "supervisor", "admin"}
    for username, _role, password in lines:
        assert can_log_in(username, password)
    again = run("demo")  # re-running resets the passwords, it does not fail
    assert again.exit_code == 0


def test_revoke_sessions_bumps_the_session_version(run):
    run("site", "add", "north", "北苑")
    run("user", "add", "wang", "--role", "guard", "--site", "north")
    result = run("user", "revoke-sessions", "wang")
    assert result.exit_code == 0
    assert "revoked" in result.output


def test_changes_made_on_the_command_line_are_in_the_admin_log_as_cli(run):
    from server.models import AdminLog

    run("site", "add", "north", "北苑")
    run("user", "add", "wang", "--role", "guard", "--site", "north")
    run("user", "revoke-sessions", "wang")

    async def entries() -> list[tuple[str, str, str]]:
        await Tortoise.init(config=db.config(load()))
        try:
            rows = await AdminLog.all().order_by("id")
            return [(r.actor_name, r.action, r.target) for r in rows]
        finally:
            await Tortoise.close_connections()

    assert asyncio.run(entries()) == [
        ("cli", "site.create", "north"),
        ("cli", "user.create", "wang"),
        ("cli", "user.sessions", "wang"),
    ]


@pytest.fixture
def root_logging():
    """Put the root logger back as pytest had it after a test configures it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_log_has_one_line_per_event_even_with_a_traceback(root_logging):
    stream = io.StringIO()
    logs.configure("INFO", stream)
    log = logging.getLogger("onsite.test")
    log.debug("below the level")
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.exception("the sweep failed\non two lines")
    log.info("removed %d orphan photo files", 3)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert " ERROR onsite.test: the sweep failed" in lines[0]
    assert "ZeroDivisionError" in lines[0]
    assert lines[1].endswith(" INFO onsite.test: removed 3 orphan photo files")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_after_a_crash_sweeps_the_leftovers_and_logs_it(tmp_path, database_url):
    # The database fixture has put a migrated SQLite database in tmp_path/data.
    data = tmp_path / "data"
    store = FilePhotoStore(data / "photos")
    orphan = uuid.uuid4()  # put in place, then killed before its row committed
    store.write(orphan, DISPLAY, b"x")
    store.write(orphan, THUMB, b"x")
    staged = store.stage(uuid.uuid4(), {DISPLAY: b"x"})  # killed while converting
    minute_ago = time.time() - 60
    for path in [store.path(orphan, DISPLAY), store.path(orphan, THUMB), *staged.moves]:
        os.utime(path, (minute_ago, minute_ago))
    port, log = free_port(), tmp_path / "server.log"
    env = {**os.environ, "ONSITE_DATA_DIR": str(data), "ONSITE_DATABASE_URL": database_url}
    env.pop("ONSITE_LOG_LEVEL", None)
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60  # for a hung start, not a timing check
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
    assert not list(store.files()) and not list(store.temporaries())
    lines = log.read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert any(
        re.fullmatch(stamp + r" INFO onsite: removed 3 orphan photo files", ln) for ln in lines
    ), lines
    # uvicorn's own lines go through the same handler, one per event.
    assert any(
        re.fullmatch(stamp + r" INFO uvicorn\.error: Application startup complete\.", ln)
        for ln in lines
    ), lines
