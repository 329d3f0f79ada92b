"""Two app servers on one PostgreSQL database (issue 18): one deployment, not two.

Two real ``onsite serve`` processes, each with a data folder of its own but
the same database, session secret, VAPID key and photo bucket (moto's S3
server, as in tests/test_photo_store_s3.py), as two machines behind a load
balancer would be: what is written through one is seen through the
other, each alert is sent once although both servers' workers run, an
escalation fires once, and when one server is killed the other goes on and
sends what the dead one had claimed once its lease ends.

Needs PostgreSQL: ONSITE_TEST_DATABASE_URL's server, else the usual local
one (127.0.0.1:5432, user postgres). Without one it is skipped, except in
CI, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server import playbooks as playbook_lib
from tests.conftest import CSRF, admin_dsn, postgres_server_url, run_async
from tests.helpers.channel_receiver import ChannelReceiver
from tests.helpers.live import LiveServer
from tests.helpers.photos import PHOTOS
from tests.helpers.push_receiver import Receiver
from tests.helpers.s3 import KEYS, new_bucket

# Serial: it measures how soon the other server hears of a report, and runs
# two servers and moto of its own, so it has the machine to itself.
pytestmark = [pytest.mark.postgres, pytest.mark.serial]
ROOT = Path(__file__).resolve().parent.parent

PASSWORD = "multi-server-pw-1"
PHOTO = PHOTOS / "phone" / "HMD_Nokia_8.3_5G.jpg"
LIFT = next(i.id for i in playbook_lib.load().incidents() if i.title.zh == "电梯困人事件")
# A critical report is escalated 3 s after it arrives; others not within a test.
ESCALATION = "critical=0.05,high=60,medium=60,low=240"
ESCALATION_S = 3.0
WORKER_POLL_S = 5.0  # the escalator's and the deliverer's own poll (their defaults)


def _postgres_base() -> str:
    """The PostgreSQL server to make the module's database on, or skip/fail."""
    import asyncpg

    base = admin_dsn(postgres_server_url() or "postgres://postgres@127.0.0.1:5432/postgres")[0]

    async def reach() -> None:
        conn = await asyncpg.connect(f"{base}/postgres", timeout=5)
        await conn.close()

    try:
        run_async(reach())
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL at {base}: {exc}")
        pytest.skip(f"no PostgreSQL at {base} ({exc}); CI runs this test")
    return base


def _admin_sql(base: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(f"{base}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_async(run())


class Servers:
    """The two servers, and direct access to their shared database."""

    def __init__(self, a: LiveServer, b: LiveServer, url: str) -> None:
        self.a, self.b, self.url = a, b, url

    def up(self) -> Servers:
        """Both running (a test before may have killed one)."""
        for server in (self.a, self.b):
            if not server.running:
                server.start()
        return self

    async def fetch(self, sql: str, *args: object) -> list:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()


@pytest.fixture
def servers(both: Servers) -> Servers:
    """The module's two servers, both running."""
    return both.up()


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Servers]:
    base = _postgres_base()
    name = f"onsite_m_{secrets.token_hex(6)}"
    _admin_sql(base, f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    # What both machines of one deployment share besides the database.
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    shared = {
        "ONSITE_SECRET_KEY": secrets.token_hex(32),
        "ONSITE_VAPID_PRIVATE_KEY": pem,
        "ONSITE_CHANNEL_HOSTS": "127.0.0.1",
        "ONSITE_ESCALATION_MINUTES": ESCALATION,
        # One bucket for both: a photo sent to one is served by the other.
        "ONSITE_PHOTO_STORE": f"s3://{new_bucket(s3_endpoint)}/photos",
        "ONSITE_S3_ENDPOINT": s3_endpoint,
        "ONSITE_S3_REGION": KEYS["s3_region"],
        "ONSITE_S3_ACCESS_KEY_ID": KEYS["s3_access_key_id"],
        "ONSITE_S3_SECRET_ACCESS_KEY": KEYS["s3_secret_access_key"],
    }
    live: list[LiveServer] = []
    try:
        for label in ("a", "b"):
            data = tmp_path_factory.mktemp(f"server_{label}") / "data"
            data.mkdir()
            server = LiveServer(data, url)
            server.env.update(shared)
            live.append(server)
        a, b = live
        a.cli("migrate")
        a.cli("site", "add", "north", "北苑")
        for user, role in (("guard", "guard"), ("super", "supervisor"), ("boss", "admin")):
            sites = ["--site", "north"] if role != "admin" else []
            how = ["--role", role, *sites, "--password-stdin"]
            a.cli("user", "add", user, *how, input=PASSWORD + "\n")
        a.start()
        b.start()
        yield Servers(a, b, url)
    finally:
        for server in live:
            server.stop()
        _admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- helpers -------------------------------------------------------------------------


async def browser(server: LiveServer, username: str) -> httpx.AsyncClient:
    """A logged-in client of ``server`` (close it after)."""
    client = httpx.AsyncClient(base_url=server.url, timeout=10)
    response = await client.post(
        "/api/session", json={"username": username, "password": PASSWORD}, headers=CSRF
    )
    assert response.status_code == 200, response.text
    return client


def report_body(severity: str = "high") -> dict:
    now = datetime.now(UTC)
    return {
        "site": "north",
        "incident_type": LIFT,
        "severity": severity,
        "occurred_at": (now - timedelta(minutes=2)).isoformat(),
        "location": {"text": "3栋 电梯"},
    }


async def until(check, timeout: float, what: str) -> float:
    """Wait until ``check()`` (sync or async) is true; the seconds it took."""
    started = time.monotonic()
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def subscribe(client: httpx.AsyncClient, device, origin: str) -> None:
    response = await client.put(
        "/api/push/subscriptions", json=device.subscription(origin), headers=CSRF
    )
    assert response.status_code == 201, response.text


# --- the tests -----------------------------------------------------------------------


async def test_a_report_sent_to_one_server_reaches_a_stream_on_the_other_within_1_s(servers):
    guard = await browser(servers.a, "guard")
    sup = await browser(servers.b, "super")
    rid = str(uuid.uuid4())
    seen: list[dict] = []
    try:
        async with sup.stream("GET", "/api/stream") as stream:
            assert stream.status_code == 200

            async def read() -> None:
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        import json

                        seen.append(json.loads(line.removeprefix("data:")))

            reading = asyncio.create_task(read())
            try:
                await asyncio.sleep(0.3)  # the stream is open and waiting
                started = time.monotonic()
                response = await guard.put(f"/api/reports/{rid}", json=report_body(), headers=CSRF)
                assert response.status_code == 201, response.text
                await until(
                    lambda: any(m.get("report", {}).get("id") == rid for m in seen),
                    timeout=5,
                    what="the report on server B's stream",
                )
                latency = time.monotonic() - started
            finally:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
        # Read back through B too, with a photo sent to A: one bucket.
        photo = PHOTO.read_bytes()
        pid = str(uuid.uuid4())
        sent = await guard.put(
            f"/api/reports/{rid}/photos/{pid}",
            content=photo,
            headers={**CSRF, "Content-Type": "image/jpeg"},
        )
        assert sent.status_code == 201, sent.text
        assert (await sup.get(f"/api/reports/{rid}")).json()["id"] == rid
        on_a = await guard.get(f"/api/reports/{rid}/photos/{pid}")
        on_b = await sup.get(f"/api/reports/{rid}/photos/{pid}")
        assert on_a.status_code == on_b.status_code == 200
        assert on_b.content == on_a.content and on_b.content[:2] == b"\xff\xd8"
    finally:
        await guard.aclose()
        await sup.aclose()
    print(f"\nstream latency across servers: {latency * 1000:.0f} ms")
    assert latency < 1.0, f"{latency:.2f} s"


async def test_the_same_report_sent_to_both_servers_at_once_is_one_report(servers):
    a = await browser(servers.a, "guard")
    b = await browser(servers.b, "guard")
    try:
        for _ in range(5):
            rid = str(uuid.uuid4())
            body = report_body()
            answers = await asyncio.gather(
                a.put(f"/api/reports/{rid}", json=body, headers=CSRF),
                b.put(f"/api/reports/{rid}", json=body, headers=CSRF),
            )
            statuses = sorted(r.status_code for r in answers)
            assert statuses == [200, 201], [r.text for r in answers]
            rows = await servers.fetch("SELECT count(*) FROM report WHERE id = $1", uuid.UUID(rid))
            events = await servers.fetch(
                "SELECT count(*) FROM event WHERE report_id = $1 AND kind = 'created'",
                uuid.UUID(rid),
            )
            assert rows[0][0] == 1 and events[0][0] == 1
    finally:
        await a.aclose()
        await b.aclose()


async def test_alerts_and_an_escalation_are_sent_once_though_both_servers_work(servers):
    async with Receiver() as phones, ChannelReceiver() as groups:
        phone = phones.device(f"super-{uuid.uuid4().hex[:8]}")
        robot = groups.robot("wecom")
        sup = await browser(servers.b, "super")
        boss = await browser(servers.b, "boss")
        guard = await browser(servers.a, "guard")
        try:
            await subscribe(sup, phone, phones.origin)
            made = await boss.put(
                f"/api/sites/north/channels/{uuid.uuid4()}",
                json={
                    "kind": "wecom",
                    "name": "北苑值班群",
                    "webhook_url": robot.url(groups.origin),
                    "min_severity": "critical",
                    "events": ["escalated"],
                },
                headers=CSRF,
            )
            assert made.status_code == 201, made.text
            rid = str(uuid.uuid4())
            response = await guard.put(
                f"/api/reports/{rid}", json=report_body("critical"), headers=CSRF
            )
            assert response.status_code == 201, response.text

            # The new report: one push, one group message.
            await until(lambda: phone.received and robot.received, 10, "the first alerts")
            # Unacknowledged, it escalates after 3 s: a second push and message.
            timeout = ESCALATION_S + WORKER_POLL_S + 5
            await until(lambda: len(phone.received) >= 2, timeout, "the escalation push")
            await until(lambda: len(robot.received) >= 2, 10, "the escalation message")
            # Both escalators and both deliverers have looked again since.
            await asyncio.sleep(WORKER_POLL_S + 1)
        finally:
            for client in (sup, boss, guard):
                await client.aclose()
    assert phones.errors == [] and groups.errors == []
    assert [m["payload"]["report_id"] for m in phone.received] == [rid, rid]
    assert len(robot.received) == 2
    escalated = await servers.fetch(
        "SELECT count(*) FROM event WHERE report_id = $1 AND kind = 'escalated'", uuid.UUID(rid)
    )
    assert escalated[0][0] == 1
    sent = await servers.fetch(
        "SELECT status, count(*) FROM push_delivery WHERE report_id = $1 GROUP BY status",
        uuid.UUID(rid),
    )
    # Two to the phone and two to the group, each sent once.
    assert {row["status"]: row["count"] for row in sent} == {"sent": 4}
    attempts = await servers.fetch(
        "SELECT count(*) FROM push_attempt a JOIN push_delivery d ON d.id = a.delivery_id "
        "WHERE d.report_id = $1",
        uuid.UUID(rid),
    )
    assert attempts[0][0] == 4


async def test_when_one_server_is_killed_the_other_serves_and_sends_what_it_held(servers):
    async with Receiver() as phones:
        # The first send hangs (A is killed during it); the next is taken.
        phone = phones.device(f"super-{uuid.uuid4().hex[:8]}", "hang")
        sup = await browser(servers.b, "super")
        guard = await browser(servers.a, "guard")
        try:
            await subscribe(sup, phone, phones.origin)
            endpoint = phone.subscription(phones.origin)["endpoint"]
            rid = str(uuid.uuid4())
            response = await guard.put(f"/api/reports/{rid}", json=report_body(), headers=CSRF)
            assert response.status_code == 201, response.text
            # A's deliverer was woken by the report and claimed its push.
            await until(lambda: phones.requests >= 1, 10, "server A's send")
            assert servers.a.proc is not None
            os.kill(servers.a.proc.pid, signal.SIGKILL)
            servers.a.proc.wait(10)

            health = await sup.get("/healthz")
            assert health.status_code == 200, health.text
            assert health.json()["status"] == "ok"
            assert (await sup.get(f"/api/reports/{rid}")).status_code == 200

            # The push is leased to the dead server: nobody sends it before
            # the lease (60 s) ends.
            leased = await servers.fetch(
                "SELECT status, next_attempt_at FROM push_delivery "
                "WHERE report_id = $1 AND endpoint = $2",
                uuid.UUID(rid),
                endpoint,
            )
            assert len(leased) == 1 and leased[0]["status"] == "pending"
            left = (leased[0]["next_attempt_at"] - datetime.now(UTC)).total_seconds()
            assert 40 < left <= 61, left
            # Let the lease end now rather than in a minute: B's deliverer
            # takes it at its next poll.
            await servers.fetch(
                "UPDATE push_delivery SET next_attempt_at = now() "
                "WHERE report_id = $1 AND endpoint = $2",
                uuid.UUID(rid),
                endpoint,
            )
            await until(lambda: phone.received, WORKER_POLL_S + 5, "server B's send")
            await asyncio.sleep(1)
        finally:
            await sup.aclose()
            await guard.aclose()
    assert phones.errors == []
    assert len(phone.received) == 1 and phone.received[0]["payload"]["report_id"] == rid
    assert phones.requests == 2  # the hung send, then B's
