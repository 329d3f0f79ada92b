"""The live stream: events reach those who may see them within a second, and a
reconnect replays what was missed. Run under a real uvicorn server, since
httpx's ASGI transport hands over a response only once it is complete."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest
import uvicorn

from server.models import Event, Report, Role, User
from server.stream import Hub, follow
from tests.conftest import CSRF, login, make_user
from tests.helpers.core import contract
from tests.helpers.reports import iso, report


@pytest.fixture
async def live(app) -> AsyncIterator[str]:
    """The app (already started by the ``app`` fixture) served over real HTTP."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def caught_up(app) -> None:
    """Until the app's hub has seen every event committed so far (it polls):
    a stream opened after this starts after them."""
    newest = await Event.all().order_by("-id").first()
    async with asyncio.timeout(5):
        while newest and app.state.hub.newest < newest.id:
            await asyncio.sleep(0.01)


@dataclass
class Feed:
    """What one browser's EventSource got: the messages, parsed, as they arrive."""

    response: httpx.Response
    messages: list[dict[str, Any]] = field(default_factory=list)
    fields: list[dict[str, str]] = field(default_factory=list)  # every block, raw
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    taken: int = 0

    async def read(self) -> None:
        block: dict[str, str] = {}
        async for line in self.response.aiter_lines():
            if line:
                name, _, value = line.partition(":")
                block[name] = block.get(name, "") + value.removeprefix(" ")
                continue
            self.fields.append(block)
            if "data" in block:
                self.messages.append(
                    {"id": int(block["id"]), "type": block["event"], **json.loads(block["data"])}
                )
                self.arrived.set()
            block = {}

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message not yet taken."""
        async with asyncio.timeout(timeout):
            while len(self.messages) <= self.taken:
                self.arrived.clear()
                await self.arrived.wait()
        self.taken += 1
        return self.messages[self.taken - 1]


@contextlib.asynccontextmanager
async def feed(
    app, base: str, username: str, headers: dict[str, str] | None = None, params: dict | None = None
) -> AsyncIterator[Feed]:
    """``username`` logged in on their own browser, with /api/stream open."""
    async with httpx.AsyncClient(
        base_url=base, timeout=10, event_hooks={"response": [contract(app).check]}
    ) as browser:
        await login(browser, username)
        async with browser.stream("GET", "/api/stream", headers=headers, params=params) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            stream = Feed(r)
            reading = asyncio.create_task(stream.read())
            try:
                # The stream is set up once its first block (retry and id) is in.
                async with asyncio.timeout(5):
                    while not stream.fields:
                        await asyncio.sleep(0.01)
                yield stream
            finally:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)


@pytest.mark.serial
async def test_a_new_report_reaches_the_sites_supervisor_within_a_second(app, client, world, live):
    async with feed(app, live, "super") as sup:
        assert sup.fields[0]["retry"] == "3000"
        await login(client, "guard")
        started = time.monotonic()
        rid = await report(app, client, severity="critical")
        message = await sup.next()
        latency = time.monotonic() - started
    assert latency < 1.0, f"{latency:.3f} s"
    assert message["type"] == "report"
    event, summary = message["event"], message["report"]
    assert event["kind"] == "created" and event["id"] == message["id"]
    assert event["actor"] == {"username": "guard", "display_name": "Guard"}
    assert event["data"]["severity"] == "critical"
    assert summary["id"] == rid and summary["status"] == "new"
    assert summary["site"] == {"code": "north", "name": "北苑"}
    print(f"\nSSE latency from the PUT being sent: {latency * 1000:.0f} ms")


@pytest.mark.serial
async def test_a_change_reaches_the_stream_with_the_report_after_it(app, client, world, live):
    await login(client, "guard")
    rid = await report(app, client, severity="critical")
    await caught_up(app)
    async with feed(app, live, "super") as sup:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            await login(c, "super")
            started = time.monotonic()
            answer = await c.put(f"/api/reports/{rid}/acknowledgement", json={}, headers=CSRF)
            assert answer.status_code == 201, answer.text
        message = await sup.next()
        latency = time.monotonic() - started
    # The service tells the hub (ctx.changed), so this does not wait for a poll.
    assert latency < 1.0, f"{latency:.3f} s"
    print(f"\nSSE latency from the acknowledgement being sent: {latency * 1000:.0f} ms")
    assert message["event"]["kind"] == "acknowledged"
    assert message["event"]["actor"]["username"] == "super"
    assert message["report"]["status"] == "acknowledged"
    assert message["report"]["acknowledged_by"]["username"] == "super"


async def test_other_sites_supervisors_and_other_guards_are_sent_nothing_of_it(
    app, client, world, live
):
    await make_user("southsuper", Role.SUPERVISOR, world.south)
    await make_user("guard2", Role.GUARD, world.north)
    async with feed(app, live, "southsuper") as south, feed(app, live, "guard2") as guard2:
        await login(client, "guard")
        theirs = await report(app, client, site="north")
        # Events come in id order: had either seen the first report, it would
        # come before the report each of them does see.
        await login(client, "southguard")
        south_report = await report(app, client, site="south")
        await login(client, "guard2")
        own = await report(app, client, site="north")
        first_south, first_guard2 = await south.next(), await guard2.next()
    assert first_south["report"]["id"] == south_report
    assert first_guard2["report"]["id"] == own
    assert theirs not in {m["report"]["id"] for m in south.messages + guard2.messages}


async def test_a_reconnect_with_last_event_id_replays_exactly_what_was_missed_in_order(
    app, client, world, live
):
    await login(client, "guard")
    async with feed(app, live, "super") as sup:
        first = await report(app, client)
        seen = await sup.next()
    assert seen["report"]["id"] == first
    # While the supervisor's phone is away: two reports, a step on the first,
    # and a report of another site, which it may not see.
    second = await report(app, client)
    tick = {"checked_at": iso(datetime.now(UTC))}
    assert (
        await client.put(f"/api/reports/{first}/steps/0", json=tick, headers=CSRF)
    ).status_code == 201
    await login(client, "southguard")
    await report(app, client, site="south")
    await login(client, "guard")
    third = await report(app, client)
    missed = [(second, "created"), (first, "step"), (third, "created")]

    for resume in (
        {"headers": {"Last-Event-ID": str(seen["id"])}},
        {"params": {"last_event_id": seen["id"]}},
    ):
        async with feed(app, live, "super", **resume) as sup:
            replayed = [await sup.next() for _ in missed]
            latest = await report(app, client)  # then the stream goes on live
            after = await sup.next()
        assert [(m["report"]["id"], m["event"]["kind"]) for m in replayed] == missed
        ids = [m["id"] for m in replayed]
        assert ids == sorted(ids) and ids[0] > seen["id"]
        assert after["report"]["id"] == latest
        missed.append((latest, "created"))


async def test_without_last_event_id_the_stream_starts_now(app, client, world, live):
    await login(client, "guard")
    old = await report(app, client)
    await caught_up(app)
    async with feed(app, live, "super") as sup:
        new = await report(app, client)
        message = await sup.next()
    assert message["report"]["id"] == new != old
    # Its first block carries the id it starts from, so a reconnect before any
    # event resumes from there instead of from "now".
    assert int(sup.fields[0]["id"]) == message["id"] - 1


async def test_the_stream_needs_a_login(client):
    response = await client.get("/api/stream")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


async def test_a_last_event_id_that_is_not_an_event_id_is_refused_by_name(client, world):
    await login(client, "super")
    response = await client.get("/api/stream", headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "Last-Event-ID"
    response = await client.get("/api/stream", params={"last_event_id": "-1"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "last_event_id"


async def test_the_stream_is_documented_as_server_sent_events(client):
    doc = (await client.get("/api/openapi.json")).json()
    op = doc["paths"]["/api/stream"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    assert {p["name"] for p in op["parameters"]} == {"last_event_id"}
    assert {"401", "422"} <= set(op["responses"])


async def test_a_revoked_session_ends_the_stream(app, client, world):
    hub = app.state.hub
    on_the_phone = await User.get(id=world.supervisor.id)  # as its request loaded it
    messages = follow(hub, on_the_phone, None, recheck=0.05)
    first = await anext(messages)
    assert first.retry == 3000
    await world.supervisor.end_sessions()
    async with asyncio.timeout(5):
        rest = [m async for m in messages]
    assert rest == []


async def test_a_stopping_server_ends_the_stream_rather_than_cutting_it_off(app, world):
    stopping = anyio.Event()
    messages = follow(app.state.hub, world.supervisor, None, stop=stopping)
    await anext(messages)
    stopping.set()
    async with asyncio.timeout(5):
        rest = [m async for m in messages]
    assert rest == []


# --- the hub: ids that commit out of order ----------------------------------------


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def event_at(report_id: str, event_id: int) -> None:
    await Event.create(id=event_id, report_id=report_id, kind="step", data={})


async def test_an_event_committed_after_a_later_one_is_still_sent_and_in_order(app, client, world):
    await login(client, "guard")
    rid = await report(app, client)
    hub = Hub(settle=60)
    await hub.start()
    try:
        start = hub.newest
        await event_at(rid, start + 2)  # its transaction committed first
        await hub.advance()
        assert hub.newest == start  # start + 1 may still be on its way
        await event_at(rid, start + 1)
        await hub.advance()
        assert hub.newest == start + 2
    finally:
        await hub.stop()


async def test_a_hole_left_by_a_rolled_back_transaction_is_passed_over_after_settle(
    app, client, world
):
    await login(client, "guard")
    rid = await report(app, client)
    ticks = Ticks()
    hub = Hub(settle=5, monotonic=ticks)
    await hub.start()
    try:
        start = hub.newest
        await event_at(rid, start + 2)
        await hub.advance()
        ticks.now += 4.9
        await hub.advance()
        assert hub.newest == start
        ticks.now += 0.1
        await hub.advance()
        assert hub.newest == start + 2
    finally:
        await hub.stop()


async def test_the_poller_wakes_waiting_streams_and_watchers(app, client, world):
    hub = Hub(poll=0.05)
    woken = []
    hub.watch(lambda: woken.append(hub.newest))
    await hub.start()
    try:
        start = hub.newest
        await login(client, "guard")
        await report(app, client)
        async with asyncio.timeout(5):
            await hub.wait(start)
        assert woken and woken[-1] > start
        assert await Report.all().count() == 1
    finally:
        await hub.stop()
