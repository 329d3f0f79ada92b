"""LISTEN/NOTIFY between app servers: another server's write wakes this one at once,
and a lost connection only falls back to polling until it is made again."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from server.notices import Notices


class Ears:
    """A ``heard`` callback that counts."""

    def __init__(self) -> None:
        self.count = 0
        self.at: list[float] = []

    def __call__(self) -> None:
        self.count += 1
        self.at.append(time.monotonic())


async def until(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


@pytest.fixture
async def pair(empty_postgres: str):
    """Two servers' notices on one database, both listening."""
    ears = Ears(), Ears()
    notices = [Notices(empty_postgres, e, retry=0.1) for e in ears]
    for n in notices:
        await n.start()
    try:
        await until(lambda: all(n.connected for n in notices))
        await until(lambda: all(e.count == 1 for e in ears))  # the look on connecting
        yield notices, ears
    finally:
        for n in notices:
            await n.stop()


def test_there_are_no_notices_on_sqlite():
    assert Notices.for_database("", lambda: None) is None
    assert Notices.for_database("sqlite:///tmp/x.sqlite3", lambda: None) is None
    assert Notices.for_database("postgres://u@h:5432/db", lambda: None) is not None


async def test_a_notice_from_one_server_wakes_the_other_at_once_and_not_itself(pair):
    (a, _b), (heard_a, heard_b) = pair
    started = time.monotonic()
    a.send()
    await until(lambda: heard_b.count == 2)
    assert heard_b.at[-1] - started < 0.2
    await asyncio.sleep(0.2)
    assert heard_a.count == 1  # its own notice is not heard back


async def test_a_burst_of_writes_is_told_in_few_notices(pair):
    (a, _b), (_heard_a, heard_b) = pair
    for _ in range(100):
        a.send()
    await until(lambda: heard_b.count >= 2)
    await asyncio.sleep(0.2)
    assert 2 <= heard_b.count <= 3  # coalesced: one NOTIFY per wait, not one per write


async def test_a_cut_connection_is_made_again_and_notices_flow_again(pair, empty_postgres):
    (a, _b), (heard_a, heard_b) = pair
    conn = await asyncpg.connect(empty_postgres)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    # Made again; each looks once on connecting (what came meanwhile is polled).
    await until(lambda: heard_a.count == 2 and heard_b.count == 2, timeout=5)
    a.send()
    await until(lambda: heard_b.count == 3)
