"""Escalation: a new report nobody acknowledged in time alerts the site's admins and
its supervisors again, once, never after acknowledgement, and never from two servers."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from server import db
from server import playbooks as playbook_lib
from server import settings as settings_mod
from server.escalation import Escalator
from server.models import Event, Report, Role
from tests.conftest import CSRF, PASSWORD, login
from tests.helpers.live import LiveServer
from tests.helpers.push import phone_of, push_kinds, settled, subscribe, until
from tests.helpers.push_receiver import Receiver
from tests.helpers.reports import iso, report

CRITICAL_MINUTES = 5  # the default deadline of a critical report
LIFT = next(i.id for i in playbook_lib.load().incidents() if i.title.zh == "电梯困人事件")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


@pytest.fixture
async def escalator(app) -> Escalator:
    """The app's worker, stopped in the background so that the test says when it runs."""
    worker: Escalator = app.state.escalator
    await worker.stop()
    return worker


async def report_to(client: httpx.AsyncClient, site: str, severity: str) -> str:
    """A lift entrapment reported to a server of its own (not the app of the test)."""
    rid = str(uuid.uuid4())
    body = {
        "site": site,
        "incident_type": LIFT,
        "severity": severity,
        "occurred_at": iso(datetime.now(UTC)),
    }
    response = await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)
    assert response.status_code == 201, response.text
    return rid


async def escalations(report_id: str) -> list[Event]:
    return list(await Event.filter(report_id=report_id, kind="escalated"))


async def test_a_critical_report_unacknowledged_past_its_deadline_escalates_once(
    app, client, world, receiver, clock, escalator
):
    sup, admin = await phone_of(app, receiver, "super"), await phone_of(app, receiver, "admin")
    await login(client, "guard")
    rid = await report(app, client, severity="critical")
    await settled(app)
    assert push_kinds(sup) == ["new"] and push_kinds(admin) == []

    clock.advance(CRITICAL_MINUTES * 60 + 1)
    assert await escalator.run_once() == 1
    await settled(app)
    assert push_kinds(sup) == ["new", "escalated"] and push_kinds(admin) == ["escalated"]
    alert = admin.received[0]
    assert alert["payload"]["report_id"] == rid
    assert alert["payload"]["title"] == "超时未确认：电梯困人事件"
    assert alert["urgency"] == "high"
    [event] = await escalations(rid)
    assert event.actor_id is None
    assert event.data == {"severity": "critical", "deadline_minutes": CRITICAL_MINUTES}
    shown = (await client.get(f"/api/reports/{rid}")).json()
    assert shown["escalated_at"] is not None
    assert [e["kind"] for e in shown["events"]] == ["created", "escalated"]

    clock.advance(3600)  # much later, and the worker runs again: nothing more
    assert await escalator.run_once() == 0
    await settled(app)
    assert push_kinds(sup) == ["new", "escalated"] and push_kinds(admin) == ["escalated"]
    assert len(await escalations(rid)) == 1


async def test_a_report_is_not_escalated_before_its_deadline(app, client, world, clock, escalator):
    await login(client, "guard")
    rid = await report(app, client, severity="high")
    minutes = app.state.settings.escalation_minutes["high"]
    clock.advance(minutes * 60 - 5)
    assert await escalator.run_once() == 0
    assert await escalations(rid) == []
    clock.advance(10)
    assert await escalator.run_once() == 1
    assert len(await escalations(rid)) == 1


async def test_an_acknowledged_report_is_never_escalated(
    app, client, world, receiver, clock, escalator
):
    sup, admin = await phone_of(app, receiver, "super"), await phone_of(app, receiver, "admin")
    await login(client, "guard")
    rid = await report(app, client, severity="critical")
    await login(client, "super")
    answer = await client.put(f"/api/reports/{rid}/acknowledgement", json={}, headers=CSRF)
    assert answer.status_code == 201, answer.text
    clock.advance(24 * 3600)
    assert await escalator.run_once() == 0
    await settled(app)
    assert push_kinds(sup) == ["new"] and push_kinds(admin) == []
    assert await escalations(rid) == []
    assert (await Report.get(id=rid)).escalated_at is None


async def test_two_servers_looking_at_the_same_moment_escalate_a_report_once(
    app, client, world, receiver, clock, escalator
):
    sup = await phone_of(app, receiver, "super")
    await login(client, "guard")
    rid = await report(app, client, severity="critical")
    await settled(app)
    clock.advance(CRITICAL_MINUTES * 60 + 1)
    # Each finds the report due before either claims it; the database decides.
    other = Escalator(app.state.context)
    done = await asyncio.gather(escalator.run_once(), other.run_once())
    assert sorted(done) == [0, 1]
    await settled(app)
    assert len(await escalations(rid)) == 1
    assert push_kinds(sup) == ["new", "escalated"]


@pytest.mark.serial
async def test_the_worker_escalates_at_the_deadline_by_itself(app, client, world, escalator):
    # A deadline of a fraction of a second, and a poll interval far beyond it:
    # only the worker's timer for the next deadline can be on time.
    ctx = app.state.context
    seconds = 0.6
    fast = dataclasses.replace(
        ctx.settings,
        escalation_minutes={**ctx.settings.escalation_minutes, "critical": seconds / 60},
    )
    worker = Escalator(dataclasses.replace(ctx, settings=fast), interval=60)
    await worker.start()
    app.state.hub.watch(worker.kick)  # a new report wakes it, as in the app
    try:
        await login(client, "guard")
        rid = await report(app, client, severity="critical")
        deadline = time.monotonic() + 5
        while not await escalations(rid):
            assert time.monotonic() < deadline, "not escalated within 5 s"
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    found = await Report.get(id=rid)
    assert found.escalated_at is not None
    late = (found.escalated_at - found.received_at).total_seconds() - seconds
    assert 0 <= late < 1.0, f"escalated {late:.3f} s after the deadline"


# --- two `onsite serve` processes on one PostgreSQL database ----------------------


@pytest.fixture
async def shared_database(tmp_path: Path, empty_postgres: str) -> str:
    """A fresh, migrated PostgreSQL database for servers in other processes.

    It is read here with asyncpg, not the models: Tortoise caches each model's
    SQL per connection name, so the models of an SQLite test run would speak
    SQLite to it."""
    settings = settings_mod.load({}, data_dir=tmp_path, database_url=empty_postgres, secret_key="k")
    await db.migrate(settings)
    return empty_postgres


async def test_two_onsite_servers_on_one_postgresql_send_one_escalation(
    shared_database, tmp_path: Path, receiver
):
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        server = LiveServer(tmp_path / name / "data", shared_database)
        server.env["ONSITE_ESCALATION_MINUTES"] = "critical=0.02,high=15,medium=60,low=240"
        servers.append(server)
    a, b = servers

    async def site_and_users() -> None:
        await asyncio.to_thread(a.cli, "site", "add", "north", "北苑")
        for username, role in (("guard", Role.GUARD), ("super", Role.SUPERVISOR)):
            await asyncio.to_thread(
                a.cli, "user", "add", username, "--role", role.value, "--site", "north",
                "--password-stdin", input=PASSWORD + "\n",
            )  # fmt: skip

    try:
        await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers), site_and_users())
        phone = receiver.device("super-phone")
        async with httpx.AsyncClient(base_url=b.url) as sup:  # subscribed through one,
            await login(sup, "super")
            assert (await subscribe(sup, phone, receiver.origin)).status_code == 201
        async with httpx.AsyncClient(base_url=a.url) as guard:  # reported through the other
            await login(guard, "guard")
            rid = await report_to(guard, "north", severity="critical")
        await until(lambda: "escalated" in push_kinds(phone), timeout=20)
    finally:
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in servers))
    # Both stopped: whatever either had claimed or queued is in the database.
    assert push_kinds(phone).count("escalated") == 1
    conn = await asyncpg.connect(shared_database)
    try:
        escalated = await conn.fetch("SELECT report_id FROM event WHERE kind = 'escalated'")
        queued = await conn.fetchval(
            "SELECT count(*) FROM push_delivery WHERE payload->>'kind' = 'escalated'"
        )
    finally:
        await conn.close()
    assert [str(e["report_id"]) for e in escalated] == [rid]
    assert queued == 1
