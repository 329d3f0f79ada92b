"""A site's alert channels in Chromium, on a phone: an admin adds a DingTalk
robot that signs (加签) through the form, sees it on the site page with its
webhook masked, changes it leaving the webhook empty (kept), sends a test
message and sees it arrive, and removes the robot after confirming. The site
page with a failing robot, the form and a supervisor's Me page are checked
for targets a thumb can hit and drawn for a person to look at."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.browser import PHONE_OPTIONS, fits_a_thumb, log_in
from tests.helpers.live import LiveServer, add_user, api_session, module_database

# What pages draw and do online: no service worker (tests/browser/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.pages_only]

TOKEN = "dingTOKEN0123456789abcdef42c9"
SECRET = "SEC0123456789abcdefSIGNINGsecret"


class Robots(ThreadingHTTPServer):
    """Group robots on 127.0.0.1 that post whatever they are sent (errcode 0),
    as WeCom and DingTalk answer a message they accept."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RobotHandler)
        self.received: list[dict[str, Any]] = []
        self.host = f"127.0.0.1:{self.server_address[1]}"

    def url(self, token: str = TOKEN) -> str:
        return f"http://{self.host}/robot/send?access_token={token}"


class _RobotHandler(BaseHTTPRequestHandler):
    server: Robots

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.received.append({"path": self.path, "body": json.loads(raw)})
        answer = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def robots() -> Iterator[Robots]:
    server = Robots()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory, staffed_template: str, robots: Robots) -> Iterator[LiveServer]:
    """The module's server (as in conftest), whose channels may also post to ``robots``."""
    data = tmp_path_factory.mktemp("server") / "data"
    with module_database(data, staffed_template) as url:
        server = LiveServer(data, url)
        server.env["ONSITE_CHANNEL_HOSTS"] = f"qyapi.weixin.qq.com,oapi.dingtalk.com,{robots.host}"
        server.keep_as_start()
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def chief(live_server, robots) -> str:
    """An admin (of site north too); their password."""
    robots.received.clear()
    return add_user(live_server, "chief", "admin", "赵经理")


def at_phone_size(page, selector: str, name: str) -> None:
    """What a phone shows (390x844) scrolled to ``selector``, below the top bar:
    a whole-page picture hides what is under the sticky bars."""
    folder = os.environ.get("ONSITE_SCREENSHOTS")
    if folder:
        page.locator(selector).evaluate("el => el.scrollIntoView({block: 'start'})")
        page.evaluate("scrollBy(0, -72)")
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
        page.evaluate("scrollTo(0, 0)")


def refused(server: LiveServer, channel_id: str, message: str) -> None:
    """Record a refusal by the service, as the delivery worker does."""
    db = server.database
    at = datetime.now(UTC) - timedelta(minutes=5)
    sql = "UPDATE alert_channel SET last_error = {}, last_error_at = {} WHERE id = {}"
    if db.sqlite:
        with contextlib.closing(sqlite3.connect(db.sqlite, timeout=30)) as conn, conn:
            conn.execute(sql.format("?", "?", "?"), (message, str(at), channel_id))
        return

    async def update(conn) -> None:
        await conn.execute(sql.format("$1", "$2", "$3"), message, at, uuid.UUID(channel_id))

    db._postgres(update)


def test_an_admin_adds_tests_and_removes_a_dingtalk_robot_on_a_phone(
    live_server, phone, chief, robots
):
    page = phone.new_page()
    log_in(page, live_server.url, username="chief", password=chief)
    page.goto(f"{live_server.url}/admin/sites/north")
    assert "还没有告警群机器人" in page.locator("#channels").inner_text()
    page.get_by_role("link", name="添加告警群机器人").click()
    page.wait_for_url(f"{live_server.url}/admin/sites/north/channels/new")

    form = page.locator('form[data-admin="channel"]')
    secret = form.get_by_label("加签密钥")
    assert not secret.is_visible()  # no service chosen yet: no secret
    form.get_by_role("radio", name="企业微信").check()
    assert (
        form.locator("p.for-wecom").is_visible() and not form.locator("p.for-dingtalk").is_visible()
    )
    form.get_by_role("radio", name="钉钉").check()
    assert secret.is_visible() and form.locator("p.for-dingtalk").is_visible()
    assert not form.locator("p.for-wecom").is_visible()
    webhook = form.get_by_label("Webhook 地址")
    assert "oapi.dingtalk.com/robot/send" in (webhook.get_attribute("placeholder") or "")
    form.get_by_label("名称").fill("北苑钉钉值班群")
    webhook.fill(robots.url())
    secret.fill(SECRET)
    form.get_by_role("radio", name="危急").check()
    form.get_by_role("checkbox", name="维修完成").check()
    fits_a_thumb(page, "admin-channel-form-dingtalk-phone-zh-CN")
    at_phone_size(page, ".channel-webhook", "admin-channel-form-dingtalk-390x844-zh-CN")
    form.get_by_role("button", name="保存").click()
    page.wait_for_url(f"{live_server.url}/admin/sites/north#channels")

    card = page.locator(".channel-card", has_text="北苑钉钉值班群")
    text = card.inner_text()
    assert "钉钉" in text and "已加签" in text and "…42c9" in text
    assert "新事件：危急及以上" in text and "超时升级" in text and "维修完成" in text
    assert TOKEN not in page.content() and SECRET not in page.content()

    # Changed with the webhook left empty: the robot's address stays.
    card.get_by_role("link", name="编辑").click()
    page.wait_for_url(re.compile(r".*/admin/sites/north/channels/[0-9a-f-]{36}$"))
    form = page.locator('form[data-admin="channel"]')
    assert form.get_by_label("Webhook 地址").input_value() == ""
    assert not form.locator("p.for-wecom").is_visible()
    form.get_by_label("名称").fill("北苑钉钉夜班群")
    form.get_by_role("button", name="保存").click()
    page.wait_for_url(f"{live_server.url}/admin/sites/north#channels")
    card = page.locator(".channel-card", has_text="北苑钉钉夜班群")
    assert "…42c9" in card.inner_text() and "已加签" in card.inner_text()
    with api_session(live_server, "chief", chief) as api:
        [channel] = api.get("/api/sites/north/channels").json()["channels"]
    assert channel["name"] == "北苑钉钉夜班群" and channel["has_secret"] is True
    assert channel["webhook_masked"].endswith("/robot/send?access_token=…42c9")

    # A test message: queued at once, and the card says when it was posted.
    card.get_by_role("button", name="发送测试消息").click()
    status = page.locator("#channel-status")
    status.get_by_text("测试消息已加入发送队列").wait_for()
    card.get_by_text("上次发送成功").wait_for(timeout=20_000)  # redrawn without a reload
    status.get_by_text("测试消息已发到群里").wait_for()
    assert len(robots.received) == 1
    posted = robots.received[0]
    assert f"access_token={TOKEN}" in posted["path"] and "&sign=" in posted["path"]
    assert posted["body"]["msgtype"] == "markdown"

    # Removed: not on the first thought, then after confirming.
    dialog = page.locator("#admin-confirm")
    card.get_by_role("button", name="删除").click()
    assert "删除告警群 北苑钉钉夜班群？" in dialog.inner_text()
    dialog.get_by_role("button", name="取消").click()
    assert card.is_visible()
    card.get_by_role("button", name="删除").click()
    dialog.get_by_role("button", name="删除").click()
    card.wait_for(state="detached")
    assert "还没有告警群机器人" in page.locator("#channels").inner_text()
    with api_session(live_server, "chief", chief) as api:
        assert api.get("/api/sites/north/channels").json() == {"channels": []}


def test_a_failing_robot_stands_out_and_a_supervisor_sees_what_alerts_them(
    live_server, browser, phone, chief, robots
):
    boss = add_user(live_server, "boss", "supervisor", "陈主管")
    ids = [str(uuid.uuid4()) for _ in range(2)]
    with api_session(live_server, "chief", chief) as api:
        wecom = {
            "kind": "wecom",
            "name": "北苑物业值班群",
            "webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecomKEY0123456789abcdef7d1e",
            "min_severity": "high",
            "events": ["escalated", "overdue"],
            "language": "zh-CN",
            "active": True,
        }
        ding = {
            **wecom,
            "kind": "dingtalk",
            "name": "工程部钉钉群",
            "webhook_url": robots.url(),
            "secret": SECRET,
            "min_severity": "critical",
            "events": ["repaired"],
        }
        for channel_id, body in zip(ids, (wecom, ding), strict=True):
            answer = api.put(f"/api/sites/north/channels/{channel_id}", json=body)
            assert answer.status_code == 201, answer.text
    refused(live_server, ids[1], "310000 sign not match")

    page = phone.new_page()
    log_in(page, live_server.url, username="chief", password=chief)
    page.goto(f"{live_server.url}/admin/sites/north#channels")
    failing = page.locator(".channel-card.failing")
    assert failing.count() == 1
    assert (
        "工程部钉钉群" in failing.inner_text() and "310000 sign not match" in failing.inner_text()
    )
    colour = failing.evaluate("el => getComputedStyle(el).borderTopColor")
    assert colour == "rgb(153, 27, 27)"  # --sev-critical: red at a glance
    fits_a_thumb(page, "admin-site-channels-phone-zh-CN")
    at_phone_size(page, "#channels", "admin-site-channels-390x844-zh-CN")
    at_phone_size(page, ".channel-card.failing", "admin-site-channel-failing-390x844-zh-CN")
    page.goto(f"{live_server.url}/admin/sites/north/channels/{ids[1]}")
    fits_a_thumb(page, "admin-channel-edit-failing-phone-zh-CN")

    context = browser.new_context(**PHONE_OPTIONS)
    try:
        them = context.new_page()
        log_in(them, live_server.url, username="boss", password=boss)
        them.goto(f"{live_server.url}/me")
        robots_part = them.locator("#alert-robots")
        text = robots_part.inner_text()
        assert "北苑物业值班群" in text and "工程部钉钉群" in text and "上次发送失败" in text
        assert "qyapi" not in them.content()
        fits_a_thumb(them, "me-alerting-supervisor-phone-zh-CN")
        at_phone_size(them, "#alerting", "me-alerting-supervisor-390x844-zh-CN")
    finally:
        context.close()
