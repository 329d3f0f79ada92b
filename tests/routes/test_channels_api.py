"""A site's alert channels through the API: admins add, change, test and remove
them under an id the phone made; the site's supervisors read them; a robot's
key and signing secret never come back, in no answer, page or log entry."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import httpx
import pytest

from server.models import AdminLog, AlertChannel, DeliveryStatus, PushDelivery
from server.settings import Settings
from tests.conftest import CSRF

KEY = "wecomKEY0123456789abcdef7d1e"
TOKEN = "dingTOKEN0123456789abcdef42c9"
SECRET = "SEC0123456789abcdefSIGNINGsecret"
WECOM = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
DINGTALK = f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"
# Nothing listens on port 9 (discard): a test message there fails at once,
# and no test reaches the real services.
LOCAL = f"http://127.0.0.1:9/cgi-bin/webhook/send?key={KEY}"
HIDDEN = (KEY, TOKEN, SECRET)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The services' hosts, and 127.0.0.1:9 for a test message that goes nowhere."""
    return dataclasses.replace(settings, channel_hosts=(*settings.channel_hosts, "127.0.0.1:9"))


def wecom(**change) -> dict:
    body = {
        "kind": "wecom",
        "name": "北苑值班群",
        "webhook_url": WECOM,
        "min_severity": "high",
        "events": ["escalated", "repaired"],
        "language": "zh-CN",
        "active": True,
    }
    return {**body, **change}


def dingtalk(**change) -> dict:
    body = wecom(kind="dingtalk", name="北苑钉钉群", webhook_url=DINGTALK, secret=SECRET)
    return {**body, **change}


def path(channel_id: str, site: str = "north") -> str:
    return f"/api/sites/{site}/channels/{channel_id}"


async def put(client: httpx.AsyncClient, where: str, body: dict) -> httpx.Response:
    response = await client.put(where, json=body, headers=CSRF)
    assert not any(h in response.text for h in HIDDEN), response.text
    return response


async def logged() -> list[tuple[str, dict]]:
    return [(e.action, e.data) for e in await AdminLog.all().order_by("id")]


def shows_nothing_secret(text: str) -> None:
    for hidden in HIDDEN:
        assert hidden not in text


async def test_an_admin_adds_a_channel_then_the_same_again_changes_nothing(app, world, as_user):
    admin = await as_user("admin")
    cid = str(uuid.uuid4())
    made = await put(admin, path(cid), wecom())
    assert made.status_code == 201, made.text
    assert made.json() == {
        "id": cid,
        "site": "north",
        "kind": "wecom",
        "name": "北苑值班群",
        "webhook_masked": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…7d1e",
        "has_secret": False,
        "min_severity": "high",
        "events": ["escalated", "repaired"],
        "language": "zh-CN",
        "active": True,
        "last_sent_at": None,
        "last_error": None,
        "last_error_at": None,
    }
    again = await put(admin, path(cid), wecom())
    assert again.status_code == 200 and again.json() == made.json()
    # The events in another order are the same channel, not a change.
    same = await put(admin, path(cid), wecom(events=["repaired", "escalated"]))
    assert same.status_code == 200
    assert [a for a, _ in await logged()] == ["channel.create"]
    assert await AlertChannel.all().count() == 1


async def test_an_admin_changes_a_channel_and_a_left_out_webhook_and_secret_stay(
    app, world, as_user
):
    admin = await as_user("admin")
    cid = str(uuid.uuid4())
    assert (await put(admin, path(cid), dingtalk())).status_code == 201
    kept = dingtalk(name="北苑夜班群", min_severity=None, events=["overdue"], language="en")
    del kept["webhook_url"], kept["secret"]
    changed = await put(admin, path(cid), kept)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["name"] == "北苑夜班群" and body["min_severity"] is None
    assert body["events"] == ["overdue"] and body["language"] == "en"
    assert body["has_secret"] is True
    assert body["webhook_masked"] == "https://oapi.dingtalk.com/robot/send?access_token=…42c9"
    stored = await AlertChannel.get(id=cid)
    assert stored.webhook_url == DINGTALK and stored.secret == SECRET
    cleared = await put(admin, path(cid), {**kept, "secret": ""})  # empty: no more signing
    assert cleared.json()["has_secret"] is False
    assert (await AlertChannel.get(id=cid)).secret == ""
    actions = await logged()
    assert [a for a, _ in actions] == ["channel.create", "channel.change", "channel.change"]
    assert actions[1][1]["changed"] == ["name", "min_severity", "events", "language"]
    assert actions[2][1]["changed"] == ["secret"]


async def test_the_key_and_secret_are_in_no_answer_page_or_log_entry(app, world, as_user):
    admin, boss = await as_user("admin"), await as_user("super")
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    await put(admin, path(ids[0]), wecom())
    await put(admin, path(ids[1]), dingtalk())
    await put(admin, path(ids[1]), dingtalk(name="改名"))
    for who in (admin, boss):
        listed = await who.get("/api/sites/north/channels")
        assert listed.status_code == 200 and len(listed.json()["channels"]) == 2
        shows_nothing_secret(listed.text)
        shows_nothing_secret((await who.get("/admin/sites/north")).text)
        shows_nothing_secret((await who.get("/me")).text)
    shows_nothing_secret((await admin.get(f"/admin/sites/north/channels/{ids[1]}")).text)
    log_page = (await admin.get("/admin/log")).text
    assert "添加告警群" in log_page and "改名" in log_page
    shows_nothing_secret(log_page)
    for _, data in await logged():
        shows_nothing_secret(repr(data))
    assert (await AdminLog.filter(action="channel.create").first()).data["webhook"] == (
        "qyapi.weixin.qq.com/cgi-bin/webhook/send"
    )


@pytest.mark.parametrize(
    "url",
    [
        f"http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}",
        f"https://evil.example.com/cgi-bin/webhook/send?key={KEY}",
        f"https://qyapi.weixin.qq.com.evil.example.com/cgi-bin/webhook/send?key={KEY}",
        f"https://qyapi.weixin.qq.com/cgi-bin/other?key={KEY}",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=",
        f"https://user:pass@qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}",
        f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}{'x' * 1000}",
        "not a url",
        "https://[::1/cgi-bin/webhook/send?key=1",
        f"http://127.0.0.1:8080/cgi-bin/webhook/send?key={KEY}",  # a port not listed
        f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}",  # DingTalk's, for WeCom
        "",
    ],
    ids=[
        "http",
        "other-host",
        "host-suffix",
        "wrong-path",
        "no-key",
        "empty-key",
        "user-pass",
        "too-long",
        "not-a-url",
        "bad-ipv6",
        "unlisted-port",
        "other-service",
        "empty",
    ],
)
async def test_a_bad_webhook_is_422_naming_it_and_nothing_is_stored(app, world, as_user, url):
    response = await put(await as_user("admin"), path(str(uuid.uuid4())), wecom(webhook_url=url))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "webhook_url"
    assert await AlertChannel.all().count() == 0
    assert await AdminLog.all().count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (wecom(secret="SECabc"), "secret"),
        (dingtalk(secret=DINGTALK), "secret"),
        (dingtalk(secret="SEC abc"), "secret"),
        (wecom(name="   "), "name"),
        (wecom(name=""), "name"),
        (wecom(kind="slack"), "kind"),
        (wecom(min_severity="urgent"), "min_severity"),
        (wecom(events=["everything"]), "events.0"),
        (wecom(language="fr"), "language"),
        ({k: v for k, v in wecom().items() if k != "min_severity"}, "min_severity"),
    ],
    ids=[
        "secret-for-wecom",
        "url-as-secret",
        "secret-with-space",
        "blank-name",
        "no-name",
        "unknown-kind",
        "unknown-severity",
        "unknown-event",
        "unknown-language",
        "severity-left-out",
    ],
)
async def test_a_bad_channel_is_422_naming_the_field(app, world, as_user, body, field):
    response = await put(await as_user("admin"), path(str(uuid.uuid4())), body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == field
    assert await AlertChannel.all().count() == 0


async def test_a_new_channel_needs_its_webhook(app, world, as_user):
    body = {k: v for k, v in wecom().items() if k != "webhook_url"}
    response = await put(await as_user("admin"), path(str(uuid.uuid4())), body)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "webhook_url"


async def test_a_channel_is_kept_to_its_site_and_its_id(app, world, as_user):
    admin = await as_user("admin")
    cid = str(uuid.uuid4())
    assert (await put(admin, path(cid), wecom())).status_code == 201
    other = await put(admin, path(cid, "south"), wecom(name="南苑群"))
    assert other.status_code == 409  # the id is north's
    assert (await AlertChannel.get(id=cid)).name == "北苑值班群"
    assert (await put(admin, path("not-a-uuid"), wecom())).status_code == 422
    assert (await put(admin, path(str(uuid.uuid4()), "nowhere"), wecom())).status_code == 404
    assert (await admin.get("/api/sites/nowhere/channels")).status_code == 404
    assert (await admin.delete(path("not-a-uuid"), headers=CSRF)).status_code == 422
    assert (await admin.post(f"{path('not-a-uuid')}/test", headers=CSRF)).status_code == 422
    # Another site's channel is not this site's: not removed, not tested.
    assert (await admin.delete(path(cid, "south"), headers=CSRF)).status_code == 204
    assert await AlertChannel.filter(id=cid).exists()
    assert (await admin.post(f"{path(cid, 'south')}/test", headers=CSRF)).status_code == 404
    assert await AlertChannel.all().count() == 1


async def test_the_sites_supervisor_reads_its_channels_but_changes_nothing(app, world, as_user):
    admin, boss = await as_user("admin"), await as_user("super")
    cid = str(uuid.uuid4())
    await put(admin, path(cid), wecom())
    listed = await boss.get("/api/sites/north/channels")
    assert listed.status_code == 200 and [c["id"] for c in listed.json()["channels"]] == [cid]
    assert (await put(boss, path(cid), wecom(name="改"))).status_code == 403
    assert (await put(boss, path(str(uuid.uuid4())), wecom())).status_code == 403
    assert (await boss.delete(path(cid), headers=CSRF)).status_code == 403
    assert (await boss.post(f"{path(cid)}/test", headers=CSRF)).status_code == 403
    south = await boss.get("/api/sites/south/channels")  # not their site
    assert south.status_code == 403 and south.json()["error"]["code"] == "forbidden_site"
    for username in ("guard", "tech"):
        who = await as_user(username)
        assert (await who.get("/api/sites/north/channels")).status_code == 403
        assert (await put(who, path(cid), wecom(name="改"))).status_code == 403
        assert (await who.post(f"{path(cid)}/test", headers=CSRF)).status_code == 403
    assert (await AlertChannel.get(id=cid)).name == "北苑值班群"
    assert await PushDelivery.all().count() == 0


async def test_a_write_without_the_csrf_header_is_refused(app, world, as_user):
    admin = await as_user("admin")
    cid = str(uuid.uuid4())
    assert (await admin.put(path(cid), json=wecom())).status_code == 403
    assert await AlertChannel.all().count() == 0
    await put(admin, path(cid), wecom())
    assert (await admin.post(f"{path(cid)}/test")).status_code == 403
    assert (await admin.delete(path(cid))).status_code == 403
    assert await AlertChannel.filter(id=cid).exists()
    assert await PushDelivery.all().count() == 0


async def test_a_test_message_is_one_queued_delivery_to_the_channel(app, world, as_user):
    admin = await as_user("admin")
    cid = str(uuid.uuid4())
    await put(admin, path(cid), wecom(webhook_url=LOCAL, active=False))  # inactive: still tested
    response = await admin.post(f"{path(cid)}/test", headers=CSRF)
    assert response.status_code == 202 and response.json() == {"queued": 1}
    rows = await PushDelivery.all()
    assert len(rows) == 1
    assert rows[0].channel_id == uuid.UUID(cid) and rows[0].topic == "test"
    assert rows[0].subscription_id is None
    shows_nothing_secret(rows[0].endpoint + repr(rows[0].payload))


async def test_a_test_to_an_unknown_channel_is_404(app, world, as_user):
    response = await (await as_user("admin")).post(f"{path(str(uuid.uuid4()))}/test", headers=CSRF)
    assert response.status_code == 404
    assert await PushDelivery.all().count() == 0


async def test_removing_a_channel_twice_is_fine_and_drops_what_waits_for_it(app, world, as_user):
    admin = await as_user("admin")
    cid = str(uuid.uuid4())
    await put(admin, path(cid), wecom(webhook_url=LOCAL))
    # What waits for the robot (a message not yet due): gone with it.
    pending = await PushDelivery.create(
        channel_id=uuid.UUID(cid),
        endpoint=f"wecom:{cid}",
        payload={"msgtype": "markdown", "markdown": {"content": "…"}},
        ttl_seconds=60,
        topic="test",
        next_attempt_at=app.state.context.clock() + timedelta(hours=1),
    )
    assert (await admin.delete(path(cid), headers=CSRF)).status_code == 204
    assert (await admin.delete(path(cid), headers=CSRF)).status_code == 204
    assert not await AlertChannel.filter(id=cid).exists()
    await pending.refresh_from_db()
    assert pending.status == DeliveryStatus.GONE
    assert [a for a, _ in await logged()] == ["channel.create", "channel.delete"]
    assert (await admin.get("/api/sites/north/channels")).json() == {"channels": []}


async def test_a_new_webhook_or_secret_clears_the_services_last_refusal(app, world, as_user):
    admin = await as_user("admin")
    cid = str(uuid.uuid4())
    await put(admin, path(cid), dingtalk())
    now = app.state.context.clock()
    await AlertChannel.filter(id=cid).update(last_error="310000 sign not match", last_error_at=now)
    renamed = await put(admin, path(cid), dingtalk(name="只改名"))
    assert renamed.json()["last_error"] == "310000 sign not match"  # about the robot, not the name
    fixed = await put(admin, path(cid), dingtalk(name="只改名", secret="SECnewSECRETvalue1234"))
    assert fixed.json()["last_error"] is None and fixed.json()["last_error_at"] is None
    await AlertChannel.filter(id=cid).update(
        last_error="300001 token is not exist", last_error_at=now
    )
    moved = await put(admin, path(cid), dingtalk(webhook_url=DINGTALK + "0", secret=None))
    assert moved.json()["last_error"] is None
