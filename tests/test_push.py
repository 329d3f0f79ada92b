"""Web Push end to end, against a receiver that verifies and decrypts like a real one."""

from __future__ import annotations

import contextlib
import stat
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.alerts.queue import notify_assignment
from server.alerts.vapid import load_vapid
from server.app import create_app
from server.models import (
    DeliveryStatus,
    PushAttempt,
    PushDelivery,
    PushSubscription,
    Report,
    Role,
)
from tests.conftest import CSRF, login, make_user
from tests.helpers.push import settled, subscribe, until, until_async
from tests.helpers.push_receiver import Receiver, unb64
from tests.helpers.reports import report


@pytest.fixture
async def receiver():
    async with Receiver() as r:
        yield r


@contextlib.asynccontextmanager
async def as_user(app, username):
    """Another phone, logged in as ``username``."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await login(c, username)
        yield c


async def test_the_public_key_is_a_p256_point_kept_private_in_the_data_dir(client, settings):
    key = (await client.get("/api/push/key")).json()["public_key"]
    assert len(unb64(key)) == 65 and unb64(key)[0] == 4
    path = settings.data_dir / "vapid_private.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_vapid(settings.data_dir).application_server_key == key  # kept, not remade


async def test_a_guards_report_reaches_the_sites_supervisor_within_seconds(
    app, client, world, receiver
):
    phone = receiver.device("super-phone")
    async with as_user(app, "super") as sup:
        assert (await subscribe(sup, phone, receiver.origin)).status_code == 201
    await login(client, "guard")
    rid = await report(app, client, severity="critical")
    await until(lambda: phone.received)
    message = phone.received[0]
    assert receiver.errors == []
    assert message["payload"]["report_id"] == rid
    assert message["payload"]["url"] == f"/reports/{rid}"
    assert message["payload"]["severity"] == "critical"
    assert "电梯困人" in message["payload"]["title"]
    assert message["ttl"] > 0
    assert message["urgency"] == "high"
    assert message["topic"]
    assert message["size"] <= 4096


async def test_the_payload_speaks_the_subscribers_language(app, client, world, receiver):
    phone = receiver.device("en-phone")
    async with as_user(app, "super") as sup:
        sup.cookies.set("onsite_lang", "en")
        await subscribe(sup, phone, receiver.origin)
    await login(client, "guard")
    await report(app, client, severity="low")
    await until(lambda: phone.received)
    assert phone.received[0]["payload"]["title"].startswith("New incident")
    assert phone.received[0]["urgency"] == "low"


async def test_supervisors_of_other_sites_and_guards_are_not_told(app, client, world, receiver):
    await make_user("southsuper", Role.SUPERVISOR, world.south)
    other, guard_phone, sup_phone = (receiver.device(p) for p in ("south", "guard", "sup"))
    async with as_user(app, "southsuper") as c:
        await subscribe(c, other, receiver.origin)
    async with as_user(app, "super") as c:
        await subscribe(c, sup_phone, receiver.origin)
    await login(client, "guard")
    await subscribe(client, guard_phone, receiver.origin)
    await report(app, client)
    await until(lambda: sup_phone.received)
    await settled(app)
    assert other.received == [] and guard_phone.received == []
    assert len(sup_phone.received) == 1


async def test_an_assignment_alerts_only_the_technician_in_their_language(
    app, client, world, receiver
):
    tech_phone, sup_phone = receiver.device("tech"), receiver.device("sup")
    async with as_user(app, "tech") as c:
        c.cookies.set("onsite_lang", "en")
        await subscribe(c, tech_phone, receiver.origin)
    await login(client, "guard")
    rid = await report(app, client, severity="critical")
    async with as_user(app, "super") as c:
        await subscribe(c, sup_phone, receiver.origin)
    found = await Report.get(id=rid)
    queued = await notify_assignment(
        found, world.north, world.technician, {"zh-CN": "电梯困人事件", "en": "Lift"}
    )
    assert queued == 1
    app.state.deliverer.kick()
    await until(lambda: tech_phone.received)
    message = tech_phone.received[0]
    assert message["payload"]["title"] == "Assigned to you: Lift"
    assert message["payload"]["kind"] == "assigned"
    assert message["payload"]["url"] == f"/reports/{rid}"
    assert message["urgency"] == "high" and message["ttl"] == 24 * 3600
    assert message["topic"] == uuid.UUID(rid).hex[:32]
    await settled(app)
    assert sup_phone.received == []  # subscribed after the report: told of nothing
    assert len(tech_phone.received) == 1


async def test_410_deletes_the_subscription(app, client, world, receiver):
    phone = receiver.device("gone", "gone")
    async with as_user(app, "super") as sup:
        await subscribe(sup, phone, receiver.origin)
    await login(client, "guard")
    await report(app, client)
    await until(lambda: receiver.requests >= 1)
    await until_async(
        lambda: PushSubscription.filter(endpoint__contains="/push/gone").exists(), expect=False
    )
    delivery = await PushDelivery.get(endpoint__contains="/push/gone")
    assert delivery.status == DeliveryStatus.GONE


async def test_429_with_retry_after_is_retried_later_and_delivered(
    app, client, world, receiver, clock
):
    phone = receiver.device("busy", "busy")  # answers 429, Retry-After: 1, then 201
    async with as_user(app, "super") as sup:
        await subscribe(sup, phone, receiver.origin)
    await login(client, "guard")
    await report(app, client)
    await until_async(lambda: PushAttempt.all().count(), 1)  # the 429, written down
    delivery = await PushDelivery.get()
    refused_at = (await PushAttempt.get()).created_at
    assert delivery.status == DeliveryStatus.PENDING
    # Due again after the second the push service asked for, not before.
    assert delivery.next_attempt_at - refused_at >= timedelta(seconds=0.9)
    assert phone.received == []
    clock.advance(1)
    app.state.deliverer.kick()
    await until(lambda: phone.received)
    await settled(app)
    codes = await PushAttempt.all().order_by("id").values_list("status_code", flat=True)
    assert codes == [429, 201]
    assert len(phone.received) == 1


@pytest.mark.serial
async def test_a_receiver_that_hangs_does_not_delay_the_others(app, client, world, receiver):
    slow, fast = receiver.device("hang", "hang"), receiver.device("fast")
    async with as_user(app, "super") as sup:
        await subscribe(sup, slow, receiver.origin)
        await subscribe(sup, fast, receiver.origin)
    await login(client, "guard")
    started = time.monotonic()
    await report(app, client)
    await until(lambda: fast.received, timeout=5)
    assert time.monotonic() - started < 5  # far below the hanging one's 10 s timeout


async def test_deliveries_pending_at_a_restart_are_delivered_after_it(settings, receiver):
    phone = receiver.device("restart")
    first = create_app(settings)
    async with LifespanManager(first):
        from server.models import Site

        site = await Site.create(code="north", name="北苑")
        await make_user("guard", Role.GUARD, site)
        await make_user("super", Role.SUPERVISOR, site)
        async with as_user(first, "super") as sup:
            await subscribe(sup, phone, receiver.origin)
        await first.state.deliverer.stop()  # the server is going down
        async with as_user(first, "guard") as guard:
            rid = await report(first, guard)
        assert await PushDelivery.filter(status=DeliveryStatus.PENDING).count() == 1
    assert phone.received == []
    second = create_app(settings)
    async with LifespanManager(second):
        await until(lambda: phone.received)
    assert phone.received[0]["payload"]["report_id"] == rid


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1:9/x",
        "http://127.0.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5:8443/x",
        "https://localhost:22/",
        "https://[::1]/x",
        "https://push.example.com/x",  # not a known push service
        "https://fcm.googleapis.com:22/fcm/send/x",  # a known one, off its https port
        "https://fcm.googleapis.com.evil.example/x",
        "https://user:pw@fcm.googleapis.com/fcm/send/x",
        "https://localhost/x",  # on the list below, but it resolves to loopback
        "https://100.64.0.1/x",  # shared address space, not public
    ],
)
async def test_a_subscription_cannot_aim_the_server_at_its_own_networks(
    app, client, world, receiver, settings, endpoint
):
    import dataclasses

    # The default push services, and a name that resolves to loopback; no
    # 127.0.0.1 on the list in this app.
    only = dataclasses.replace(settings, push_hosts=(*settings.push_hosts[:-1], "localhost"))
    app.state.context = dataclasses.replace(app.state.context, settings=only)
    await login(client, "guard")
    body = {**receiver.device("x").subscription(receiver.origin), "endpoint": endpoint}
    response = await client.put("/api/push/subscriptions", json=body, headers=CSRF)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "endpoint"
    assert await PushSubscription.all().count() == 0


async def test_a_known_push_service_is_taken(client, world, receiver, monkeypatch):
    from server import netcheck

    async def public(host, allowed):  # no DNS in tests: say it is public
        return None

    monkeypatch.setattr(netcheck, "private_address", public)
    await login(client, "super")
    for endpoint in (
        "https://fcm.googleapis.com/fcm/send/abc:def",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
        "https://web.push.apple.com/QGx",
        "https://wns2-by3p.notify.windows.com/w/?token=AwY",
    ):
        body = {**receiver.device("x").subscription(receiver.origin), "endpoint": endpoint}
        response = await client.put("/api/push/subscriptions", json=body, headers=CSRF)
        assert response.status_code == 201, (endpoint, response.text)


async def test_a_send_to_an_endpoint_no_longer_allowed_is_refused_at_send_time(
    app, client, world, receiver
):
    phone = receiver.device("later")
    async with as_user(app, "super") as sup:
        await subscribe(sup, phone, receiver.origin)
    app.state.deliverer.device_sender.hosts = ("fcm.googleapis.com",)  # the list changed since
    await login(client, "guard")
    await report(app, client)
    await settled(app)
    assert phone.received == [] and receiver.requests == 0
    delivery = await PushDelivery.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "no longer an allowed host" in (await PushAttempt.get()).error


async def test_a_person_keeps_at_most_ten_devices_and_the_oldest_goes(client, world, receiver):
    from server.alerts.devices import MAX_DEVICES

    await login(client, "super")
    endpoints = []
    for n in range(MAX_DEVICES + 2):
        sub = receiver.device(f"d{n}").subscription(receiver.origin)
        endpoints.append(sub["endpoint"])
        assert (
            await client.put("/api/push/subscriptions", json=sub, headers=CSRF)
        ).status_code == 201
    kept = await PushSubscription.all().order_by("id").values_list("endpoint", flat=True)
    assert list(kept) == endpoints[2:]


async def test_dead_endpoints_of_others_cost_only_their_own_slots(app, client, world, receiver):
    """Forty endpoints that never answer, queued first (four people with ten
    devices each, a test push each): a supervisor's alert still goes at once."""
    floods = []
    for n in range(4):
        user = await make_user(f"flood{n}", Role.GUARD, world.north)
        for d in range(10):
            device = receiver.device(f"hang-{n}-{d}", "hang")
            floods.append(device)
            sub = device.subscription(receiver.origin)
            await PushSubscription.create(
                user=user,
                endpoint=sub["endpoint"],
                p256dh=sub["keys"]["p256dh"],
                auth=sub["keys"]["auth"],
            )
        async with as_user(app, f"flood{n}") as c:
            assert (await c.post("/api/push/test", headers=CSRF)).status_code == 202
    await until(lambda: receiver.requests >= 8)  # the dead ones are being tried
    phone = receiver.device("super-phone")
    async with as_user(app, "super") as sup:
        await subscribe(sup, phone, receiver.origin)
    await login(client, "guard")
    await report(app, client, severity="critical")
    await until(lambda: phone.received, timeout=5)
    # The dead endpoints have not answered (they hang for the timeout), yet the
    # alert went: they did not hold the slots it needed.
    assert all(not d.received for d in floods)


@pytest.mark.parametrize(
    "change",
    [
        {"endpoint": "http://push.example.com/x"},
        {"endpoint": "ftp://push.example.com/x"},
        {"endpoint": "not a url"},
        {"keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}},
        {"keys": {"p256dh": None, "auth": "x"}},
        {"keys": None},
    ],
)
async def test_bad_subscriptions_are_422_and_stored_nowhere(client, world, receiver, change):
    await login(client, "super")
    body = {**receiver.device("x").subscription("https://push.example.com"), **change}
    response = await client.put("/api/push/subscriptions", json=body, headers=CSRF)
    assert response.status_code == 422, response.text
    assert await PushSubscription.all().count() == 0


async def test_subscribing_needs_a_login_and_the_csrf_header(client, world, receiver):
    sub = receiver.device("x").subscription(receiver.origin)
    assert (await client.put("/api/push/subscriptions", json=sub, headers=CSRF)).status_code == 401
    await login(client, "super")
    assert (await client.put("/api/push/subscriptions", json=sub)).status_code == 403


async def test_subscribing_twice_is_one_subscription_and_delete_removes_it(client, world, receiver):
    await login(client, "super")
    sub = receiver.device("x").subscription(receiver.origin)
    first = await client.put("/api/push/subscriptions", json=sub, headers=CSRF)
    second = await client.put("/api/push/subscriptions", json=sub, headers=CSRF)
    assert (first.status_code, second.status_code) == (201, 200)
    assert await PushSubscription.all().count() == 1
    gone = await client.request(
        "DELETE", "/api/push/subscriptions", json={"endpoint": sub["endpoint"]}, headers=CSRF
    )
    assert gone.status_code == 204
    assert await PushSubscription.all().count() == 0


async def test_a_test_notification_reaches_my_own_device(app, client, world, receiver):
    phone = receiver.device("mine")
    await login(client, "guard")
    await subscribe(client, phone, receiver.origin)
    response = await client.post("/api/push/test", headers=CSRF)
    assert response.json() == {"queued": 1}
    await until(lambda: phone.received)
    assert phone.received[0]["payload"]["kind"] == "test"


def test_the_vapid_token_is_signed_once_per_push_service_and_names_its_origin(tmp_path):
    import jwt as pyjwt

    vapid = load_vapid(tmp_path).pusher().vapid
    a1 = vapid.get_authorization_header("https://fcm.example:8443/send/a", "mailto:x@y", 3600 * 12)
    a2 = vapid.get_authorization_header("https://fcm.example:8443/send/b", "mailto:x@y", 3600 * 12)
    other = vapid.get_authorization_header("https://push.example/wpush/c", "mailto:x@y", 3600 * 12)
    assert a1 == a2  # one signature for a fan-out to one push service
    assert other != a1

    def claims(header: str) -> dict:
        token = header.split("t=", 1)[1].split(",", 1)[0]
        return pyjwt.decode(token, options={"verify_signature": False})

    assert claims(a1)["aud"] == "https://fcm.example:8443"  # the port is kept
    assert claims(other)["aud"] == "https://push.example"
    assert claims(a1)["exp"] <= time.time() + 24 * 3600


async def test_a_stopping_deliverer_starts_no_new_send(tmp_path):
    """A lane that frees up during shutdown must not start its next message:
    that send would escape the tasks ``stop`` waits for."""
    from types import SimpleNamespace

    from server.alerts.deliverer import Deliverer

    deliverer = Deliverer(load_vapid(tmp_path))
    await deliverer.stop()  # never started: nothing to cancel, and now stopping
    later = datetime.now(UTC) + timedelta(minutes=5)
    waiting = SimpleNamespace(
        id=uuid.uuid4(),
        endpoint="https://push.example/x",
        subscription=None,
        next_attempt_at=later,
    )
    deliverer._to_lane(waiting)  # type: ignore[arg-type]
    assert not deliverer._in_flight
