"""Alerts to WeCom and DingTalk group robots, end to end, against robots on
127.0.0.1 that check what the real services check (tests/helpers/channel_receiver.py):
the DingTalk signature and its timestamp, each service's markdown JSON, UTF-8."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.alerts import robots
from server.alerts.lanes import PACE_WINDOW
from server.alerts.queue import tell_channels
from server.app import create_app
from server.escalation import Escalator
from server.models import (
    AlertChannel,
    DeliveryStatus,
    PushAttempt,
    PushDelivery,
    Report,
    Role,
    Severity,
    Site,
)
from tests.conftest import CSRF, login, make_user
from tests.helpers.channel_receiver import ChannelReceiver, Robot
from tests.helpers.push import subscribe, until, until_async
from tests.helpers.push_receiver import Receiver
from tests.helpers.reports import iso, lift_id

PUBLIC = "https://onsite.example.com"
SECRET = "SEC" + "5a" * 30


@pytest.fixture
def settings(settings):
    """The app may post to the local robots, and knows its own address."""
    return dataclasses.replace(settings, channel_hosts=("127.0.0.1",), public_url=PUBLIC)


@pytest.fixture
async def robots_at():
    async with ChannelReceiver() as r:
        yield r


async def channel(
    site: Site,
    robot: Robot,
    receiver: ChannelReceiver,
    *,
    min_severity: Severity | None = Severity.HIGH,
    events: tuple[str, ...] = ("escalated", "repaired", "overdue"),
    language: str = "zh-CN",
    active: bool = True,
) -> AlertChannel:
    return await AlertChannel.create(
        id=uuid.uuid4(),
        site_id=site.id,
        kind=robot.kind,
        name=f"{site.name}{robot.kind}群",
        webhook_url=robot.url(receiver.origin),
        secret=robot.secret,
        min_severity=min_severity,
        events=list(events),
        language=language,
        active=active,
    )


async def report(app, client, site: str = "north", severity: str = "critical", **extra) -> str:
    rid = str(uuid.uuid4())
    now = datetime.now(UTC)
    body = {
        "site": site,
        "incident_type": lift_id(app),
        "severity": severity,
        "occurred_at": iso(now - timedelta(minutes=3)),
        "location": {"text": "3栋 电梯"},
        "steps": [{"index": i, "checked_at": iso(now)} for i in (0, 1)],
        **extra,
    }
    response = await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)
    assert response.status_code == 201, response.text
    return rid


async def channel_settled(app, timeout: float = 10.0) -> None:
    """Nothing due is left: what is pending waits for a later time."""
    clock = app.state.context.clock

    async def done() -> bool:
        due = await PushDelivery.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=clock()
        ).exists()
        return not due and app.state.deliverer.idle

    await until_async(done, expect=True, timeout=timeout)


def steps_of(app) -> list[str]:
    return [s.text.zh for s in app.state.playbooks.incident(lift_id(app)).handling]


# --- what arrives ------------------------------------------------------------------


@pytest.mark.serial
async def test_a_critical_report_reaches_a_wecom_and_a_signed_dingtalk_group_within_2_s(
    app, client, world, robots_at
):
    wecom = robots_at.robot("wecom")
    ding = robots_at.robot("dingtalk", secret=SECRET)
    await channel(world.north, wecom, robots_at)
    await channel(world.north, ding, robots_at)
    await login(client, "guard")
    started = time.monotonic()
    rid = await report(app, client)
    await until(lambda: wecom.received and ding.received, timeout=2)
    assert time.monotonic() - started < 2
    assert robots_at.errors == []  # signature, timestamp, JSON shape, UTF-8: all as required

    link = f"{PUBLIC}/reports/{rid}"
    first, second = steps_of(app)[:2]
    content = wecom.received[0]["content"]
    assert content.startswith("## 新事件：电梯困人事件\n")
    assert '> 严重程度：<font color="warning">危急</font>' in content
    for line in ("> 小区：北苑", "> 地点：3栋 电梯", "> 上报人：Guard", f"- ✓ {first}"):
        assert line in content
    assert f"- ✓ {second}" in content
    assert f"[打开事件]({link})" in content
    # UTF-8 as itself on the wire, not \\u escapes, and intact.
    assert "电梯困人事件".encode() in wecom.received[0]["raw"]

    text = ding.received[0]["text"]
    assert ding.received[0]["title"] == "新事件：电梯困人事件（危急）"
    assert text.startswith("### 新事件：电梯困人事件\n\n**严重程度：危急**\n\n小区：北苑")
    assert f"[打开事件]({link})" in text
    assert f"- ✓ {first}" in text
    # The time the incident happened, in the site's zone (Asia/Shanghai by default).
    occurred = (await Report.get(id=rid)).occurred_at.astimezone(
        __import__("zoneinfo").ZoneInfo(app.state.context.settings.timezone)
    )
    assert f"发生时间：{occurred:%Y-%m-%d %H:%M}" in text

    await channel_settled(app)
    channels = await AlertChannel.all()
    assert all(c.last_sent_at is not None and c.last_error == "" for c in channels)
    assert len(wecom.received) == len(ding.received) == 1


@pytest.mark.serial
async def test_a_hung_group_delays_neither_the_other_groups_nor_the_phones(
    app, client, world, robots_at
):
    hung = robots_at.robot("wecom", "hang", "hang")
    wecom, ding = robots_at.robot("wecom"), robots_at.robot("dingtalk", secret=SECRET)
    for robot in (hung, wecom, ding):
        await channel(world.north, robot, robots_at)
    async with Receiver() as push:
        phone = push.device("super-phone")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as sup:
            await login(sup, "super")
            await subscribe(sup, phone, push.origin)
        await login(client, "guard")
        started = time.monotonic()
        await report(app, client)
        await report(app, client, severity="high")  # a second, behind the hung one's first
        await until(
            lambda: len(wecom.received) == len(ding.received) == len(phone.received) == 2,
            timeout=2,
        )
        assert time.monotonic() - started < 2  # the hung one's timeout is 10 s
    assert hung.received == []
    assert robots_at.errors == []


async def test_which_reports_a_group_hears_of_goes_by_severity_site_and_switch(
    app, client, world, robots_at
):
    high = robots_at.robot("wecom")
    events_only = robots_at.robot("wecom")
    off = robots_at.robot("dingtalk")
    south = robots_at.robot("dingtalk")
    await channel(world.north, high, robots_at, min_severity=Severity.HIGH)
    await channel(world.north, events_only, robots_at, min_severity=None)
    await channel(world.north, off, robots_at, min_severity=Severity.LOW, active=False)
    await channel(world.south, south, robots_at, min_severity=Severity.LOW)
    await login(client, "guard")
    for severity in ("critical", "high", "medium", "low"):
        await report(app, client, severity=severity)
    await channel_settled(app)
    assert [m["content"].split("\n")[1] for m in high.received] == [
        '> 严重程度：<font color="warning">危急</font>',
        '> 严重程度：<font color="warning">高</font>',
    ]
    assert events_only.received == off.received == south.received == []


async def test_a_group_set_to_english_is_told_in_english(app, client, world, robots_at):
    ding = robots_at.robot("dingtalk")
    await channel(world.north, ding, robots_at, min_severity=Severity.LOW, language="en")
    await login(client, "guard")
    await report(app, client, severity="medium")
    await until(lambda: ding.received)
    message = ding.received[0]
    assert message["title"].startswith("New incident: ") and message["title"].endswith("(Medium)")
    assert "Site: 北苑" in message["text"] and "[Open the incident](" in message["text"]


async def test_what_a_guard_typed_cannot_become_markdown_or_a_link(app, client, world, robots_at):
    wecom = robots_at.robot("wecom")
    await channel(world.north, wecom, robots_at)
    await login(client, "guard")
    typed = "3栋 [点我](https://evil.example)\n## 大字 <font color='info'>x</font> `code` *b*"
    await report(app, client, location={"text": typed})
    await until(lambda: wecom.received)
    content = wecom.received[0]["content"]
    location = next(line for line in content.split("\n") if line.startswith("> 地点"))
    assert location == (
        "> 地点：3栋 ［点我］(https://evil.example) ＃＃ 大字 ＜font color='info'＞x＜/font＞"
        " ｀code｀ ＊b＊"
    )
    assert content.count("\n## ") == 0 and content.startswith("## ")  # only the heading


def test_a_message_with_many_long_steps_is_cut_to_fit_wecoms_4096_bytes():
    facts = robots.Facts(
        kind="new",
        title={"zh-CN": "电梯困人事件", "en": "Lift"},
        severity=Severity.CRITICAL,
        site="北苑",
        location="3栋",
        reporter="张三",
        occurred_at=datetime(2026, 11, 26, 1, 2, tzinfo=UTC),
        steps=tuple({"zh-CN": "安" * 120, "en": "x" * 120} for _ in range(40)),
        url=f"{PUBLIC}/reports/x",
    )
    message = robots.report_message(robots.ChannelKind.WECOM, "zh-CN", facts, "Asia/Shanghai")
    content = message["markdown"]["content"]
    assert len(content.encode()) <= robots.MAX_BYTES
    assert "……另有" in content and content.endswith(f"[打开事件]({PUBLIC}/reports/x)")
    assert "> 发生时间：2026-11-26 09:02" in content  # in the site's zone


# --- retries, refusals, pace --------------------------------------------------------


async def test_a_5xx_is_retried_later_and_then_delivered_once(app, client, world, robots_at, clock):
    ding = robots_at.robot("dingtalk", "error", secret=SECRET)
    await channel(world.north, ding, robots_at)
    await login(client, "guard")
    await report(app, client)
    await until_async(lambda: PushAttempt.all().count(), 1)
    delivery = await PushDelivery.get()
    assert delivery.status == DeliveryStatus.PENDING and ding.received == []
    clock.advance(3600)
    app.state.deliverer.kick()
    await until(lambda: ding.received)
    await channel_settled(app)
    codes = await PushAttempt.all().order_by("id").values_list("status_code", flat=True)
    assert codes == [503, 200]
    assert len(ding.received) == 1 and robots_at.errors == []
    assert (await PushDelivery.get()).status == DeliveryStatus.SENT


async def test_a_newer_message_does_not_overtake_one_waiting_for_its_retry(
    app, client, world, robots_at, clock
):
    ding = robots_at.robot("dingtalk", "error", secret=SECRET)
    await channel(world.north, ding, robots_at)
    await login(client, "guard")
    first = await report(app, client)
    await until_async(lambda: PushAttempt.all().count(), 1)  # the 503
    second = await report(app, client)
    await channel_settled(app)
    assert ding.answered == ["error"]  # the second was held back, not sent around it
    clock.advance(3600)
    app.state.deliverer.kick()
    await until(lambda: len(ding.received) == 2)
    await channel_settled(app)
    assert [first in ding.received[0]["text"], second in ding.received[1]["text"]] == [True, True]


@pytest.mark.parametrize(("kind", "hold"), [("wecom", 60), ("dingtalk", 600)])
async def test_a_too_fast_answer_is_waited_out_not_dropped(
    app, client, world, robots_at, clock, kind, hold
):
    robot = robots_at.robot(kind, "limited", "limited")
    await channel(world.north, robot, robots_at)
    await login(client, "guard")
    await report(app, client)
    await until_async(lambda: PushAttempt.all().count(), 1)
    delivery = await PushDelivery.get()
    attempt = await PushAttempt.get()
    assert delivery.status == DeliveryStatus.PENDING
    # The robot is left alone for as long as its service says it is blocked.
    assert delivery.next_attempt_at - attempt.created_at >= timedelta(seconds=hold - 1)
    assert str(robots.RATE_LIMITED[robots.ChannelKind(kind)]) in attempt.error
    for _ in range(2):  # too fast again, then through
        clock.advance(hold + 1)
        app.state.deliverer.kick()
        await until_async(lambda: PushAttempt.all().count(), 2 + _)
    await until(lambda: robot.received)
    await channel_settled(app)
    assert robot.answered == ["limited", "limited", "ok"]
    found = await PushDelivery.get()
    assert found.status == DeliveryStatus.SENT and found.attempts == 1  # only the real one counts
    assert (await AlertChannel.get()).last_error == ""


async def test_an_errcode_refusal_is_recorded_on_the_channel_and_not_retried(
    app, client, world, robots_at, clock
):
    wecom = robots_at.robot("wecom", "refuse")
    made = await channel(world.north, wecom, robots_at)
    await login(client, "guard")
    await report(app, client)
    await until_async(
        lambda: PushDelivery.filter(status=DeliveryStatus.FAILED).exists(), expect=True
    )
    await channel_settled(app)
    found = await AlertChannel.get(id=made.id)
    assert found.last_error == "93000: invalid webhook url"
    assert found.last_error_at is not None and found.last_sent_at is None
    attempt = await PushAttempt.get()
    assert attempt.status_code == 200 and attempt.error == "93000: invalid webhook url"
    clock.advance(7200)
    app.state.deliverer.kick()
    await channel_settled(app)
    assert wecom.answered == ["refuse"]  # an errcode is an answer: never sent again

    # The admin sees the service's words on the channel, until a send works.
    admin = await login_as(app, "admin")
    listed = (await admin.get("/api/sites/north/channels")).json()["channels"]
    assert listed[0]["last_error"] == "93000: invalid webhook url"
    await admin.aclose()
    await report(app, client)
    await until(lambda: wecom.received)
    await channel_settled(app)
    found = await AlertChannel.get(id=made.id)
    assert found.last_sent_at is not None and found.last_sent_at > found.last_error_at


async def login_as(app, username: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    await login(c, username)
    return c


async def test_a_robot_gets_at_most_20_a_minute_in_order_and_the_rest_later(
    app, client, world, robots_at, clock
):
    wecom = robots_at.robot("wecom")
    await channel(world.north, wecom, robots_at, min_severity=Severity.LOW)
    await login(client, "guard")
    rids = [await report(app, client, severity="low") for _ in range(25)]
    await until(lambda: len(wecom.received) == robots.PER_MINUTE)
    await channel_settled(app)
    assert len(wecom.received) == robots.PER_MINUTE
    waiting = await PushDelivery.filter(status=DeliveryStatus.PENDING).count()
    assert waiting == 5
    assert await PushAttempt.all().count() == robots.PER_MINUTE  # put off, not tried
    clock.advance(PACE_WINDOW.total_seconds() + 1)
    app.state.deliverer.kick()
    await until(lambda: len(wecom.received) == 25)
    await channel_settled(app)
    links = [m["content"].rsplit("/reports/", 1)[1].rstrip(")") for m in wecom.received]
    assert links == rids  # each once, in the order they were reported


async def test_messages_pending_at_a_restart_are_delivered_once_after_it(settings, robots_at):
    ding = robots_at.robot("dingtalk", secret=SECRET)
    first = create_app(settings)
    async with LifespanManager(first):
        site = await Site.create(code="north", name="北苑")
        await make_user("guard", Role.GUARD, site)
        await channel(site, ding, robots_at)
        await first.state.deliverer.stop()  # the server is going down
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=first), base_url="http://testserver"
        ) as guard:
            await login(guard, "guard")
            rid = await report(first, guard)
        assert await PushDelivery.filter(status=DeliveryStatus.PENDING).count() == 1
    assert ding.received == []
    second = create_app(settings)
    async with LifespanManager(second):
        await until(lambda: ding.received)
        await channel_settled(second)
    third = create_app(settings)  # and once more: nothing is sent twice
    async with LifespanManager(third):
        await channel_settled(third)
    assert len(ding.received) == 1 and rid in ding.received[0]["text"]
    assert robots_at.errors == []


# --- the other events ----------------------------------------------------------------


async def test_an_escalation_reaches_the_groups_told_of_escalations(
    app, client, world, robots_at, clock
):
    told = robots_at.robot("dingtalk", secret=SECRET)
    not_told = robots_at.robot("wecom")
    await channel(world.north, told, robots_at, min_severity=None, events=("escalated",))
    await channel(world.north, not_told, robots_at, min_severity=None, events=("repaired",))
    escalator: Escalator = app.state.escalator
    await escalator.stop()
    await login(client, "guard")
    rid = await report(app, client)
    clock.advance(5 * 60 + 1)
    assert await escalator.run_once() == 1
    await until(lambda: told.received)
    await channel_settled(app)
    assert told.received[0]["title"] == "超时未确认：电梯困人事件（危急）"
    assert rid in told.received[0]["text"] and not_told.received == []


@pytest.mark.parametrize(("kind", "heading"), [("repaired", "已修复"), ("overdue", "整改已逾期")])
async def test_repairs_and_overdue_actions_reach_the_groups_told_of_them(
    app, client, world, robots_at, kind, heading
):
    told = robots_at.robot("wecom")
    await channel(world.north, told, robots_at, min_severity=None, events=(kind,))
    await login(client, "guard")
    rid = await report(app, client)
    found = await Report.get(id=rid)
    queued = await tell_channels(
        app.state.context,
        found,
        world.north,
        kind,
        owner=world.technician if kind == "overdue" else None,
    )
    assert queued == 1
    app.state.deliverer.kick()
    await until(lambda: told.received)
    content = told.received[0]["content"]
    assert heading in content.split("\n")[0]
    assert ("> 整改负责人：Tech" in content) == (kind == "overdue")


async def test_a_test_message_reaches_even_a_switched_off_group(app, world, robots_at):
    wecom = robots_at.robot("wecom")
    made = await channel(world.north, wecom, robots_at, active=False)
    admin = await login_as(app, "admin")
    response = await admin.post(f"/api/sites/north/channels/{made.id}/test", headers=CSRF)
    await admin.aclose()
    assert response.status_code == 202 and response.json() == {"queued": 1}
    await until(lambda: wecom.received)
    content = wecom.received[0]["content"]
    assert content.startswith("## 测试消息\n") and "北苑" in content
    assert f"[打开 Onsite]({PUBLIC}/)" in content


async def test_a_switched_off_or_removed_group_is_sent_nothing_that_was_waiting(
    app, client, world, robots_at, clock
):
    off = robots_at.robot("wecom", "error")
    gone = robots_at.robot("dingtalk", "error")
    off_channel = await channel(world.north, off, robots_at)
    gone_channel = await channel(world.north, gone, robots_at)
    await login(client, "guard")
    await report(app, client)
    await until_async(lambda: PushAttempt.all().count(), 2)  # both 503: waiting to retry
    await AlertChannel.filter(id=off_channel.id).update(active=False)
    admin = await login_as(app, "admin")
    deleted = await admin.delete(f"/api/sites/north/channels/{gone_channel.id}", headers=CSRF)
    await admin.aclose()
    assert deleted.status_code == 204
    clock.advance(3600)
    app.state.deliverer.kick()
    await channel_settled(app)
    await asyncio.sleep(0)  # nothing left to arrive
    assert off.received == gone.received == []
    statuses = await PushDelivery.all().values_list("status", flat=True)
    assert set(statuses) == {DeliveryStatus.GONE}


# --- the webhook, checked before it is stored -----------------------------------------


@pytest.mark.parametrize(
    ("kind", "url", "problem"),
    [
        ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", None),
        ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=abc", None),
        ("wecom", "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", "https"),
        ("wecom", "https://evil.example/cgi-bin/webhook/send?key=abc", "not an allowed"),
        ("wecom", "https://127.0.0.1/cgi-bin/webhook/send?key=abc", "not an allowed"),
        ("wecom", "https://qyapi.weixin.qq.com.evil.example/cgi-bin/webhook/send?key=a", "allowed"),
        ("wecom", "https://u:p@qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", "password"),
        ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send", "key="),
        ("wecom", "https://qyapi.weixin.qq.com/robot/send?key=abc", "path"),
        ("dingtalk", "https://oapi.dingtalk.com/robot/send?key=abc", "access_token="),
        ("dingtalk", "https://qyapi.weixin.qq.com/robot/send?access_token=a", None),
        ("wecom", "https://qyapi.weixin.qq.com:99999/x", "not a URL"),
        ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + "a" * 1000, "1000"),
        ("sms", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", "unknown"),
    ],
)
def test_only_https_webhooks_on_the_services_own_hosts_are_taken(kind, url, problem):
    hosts = ("qyapi.weixin.qq.com", "oapi.dingtalk.com")
    found = robots.webhook_problem(url, kind, hosts)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_plain_http_is_only_for_a_listed_127_0_0_1():
    url = "http://127.0.0.1:8080/cgi-bin/webhook/send?key=abc"
    assert robots.webhook_problem(url, "wecom", ("127.0.0.1",)) is None
    assert robots.webhook_problem(url, "wecom", ("127.0.0.1:8080",)) is None
    assert "not an allowed" in robots.webhook_problem(url, "wecom", ("127.0.0.1:9",))
    assert "https" in robots.webhook_problem(
        "http://localhost:8080/cgi-bin/webhook/send?key=abc", "wecom", ("localhost",)
    )


def test_the_dingtalk_signature_is_url_encoded_base64_of_the_hmac():
    # The example in DingTalk's guide has a '+' and a '/' to escape: checked
    # against the receiver's own computation, then against its URL form.
    ts = 1_700_000_000_000
    signed = robots.signed_url(
        "https://oapi.dingtalk.com/robot/send?access_token=t",
        SECRET,
        datetime.fromtimestamp(ts / 1000, UTC),
    )
    assert f"&timestamp={ts}&sign=" in signed
    from urllib.parse import parse_qs, urlsplit

    sign = parse_qs(urlsplit(signed).query)["sign"][0]
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert sign == expected
    assert robots.signed_url("https://x/robot/send?access_token=t", "", datetime.now(UTC)) == (
        "https://x/robot/send?access_token=t"
    )
