"""Push in Chromium: the worker shows a pushed alert and a tap opens the
report; the "我的 / Me" page subscribes after a tap, sends a test
notification and unsubscribes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import pytest

from server.alerts.texts import payload
from server.models import Report, Severity
from tests.helpers.browser import NOTIFICATIONS_JS, SMALL_TARGETS_JS, push_and_wait, screenshot
from tests.helpers.browser import log_in as log_in_as_guard
from tests.helpers.push_receiver import Receiver

pytestmark = pytest.mark.browser


def log_in(page, url: str) -> None:
    """Logged in, with the service worker in control of the page."""
    log_in_as_guard(page, url)
    page.wait_for_function("navigator.serviceWorker.controller !== null")


def a_report(page) -> str:
    """A report made through the API from the logged-in page; its id."""
    report_id = str(uuid.uuid4())
    status = page.evaluate(
        """async (id) => (await fetch(`/api/reports/${id}`, {
            method: "PUT",
            headers: {"X-Requested-With": "onsite", "Content-Type": "application/json"},
            body: JSON.stringify({site: "north", incident_type: "lift-entrapment",
                                  severity: "critical", occurred_at: new Date().toISOString(),
                                  location: {text: "3栋 电梯"}, steps: []}),
        })).status""",
        report_id,
    )
    assert status == 201
    return report_id


def test_a_pushed_alert_is_shown_and_a_tap_opens_the_report(live_server, phone):
    phone.grant_permissions(["notifications"], origin=live_server.url)
    page = phone.new_page()
    log_in(page, live_server.url)
    report_id = a_report(page)
    report = Report(id=uuid.UUID(report_id), location_text="3栋 电梯", severity=Severity.CRITICAL)
    message = payload("new", report, {"zh-CN": "电梯困人事件"}, "北苑", "zh-CN")

    worker, shown = push_and_wait(phone, page, live_server.url, message)
    assert len(shown) == 1, shown
    alert = shown[0]
    assert alert["title"] == "新事件：电梯困人事件"
    assert alert["body"] == "北苑 · 3栋 电梯"
    assert alert["tag"] == f"report-{report_id}"  # a newer alert replaces it
    assert alert["renotify"] is True and alert["requireInteraction"] is True  # critical
    assert alert["icon"].endswith("/static/icons/icon-192.png")
    assert alert["badge"].endswith("/static/icons/badge-96.png")
    assert alert["data"]["url"] == f"/reports/{report_id}"

    # A tap: the worker gets notificationclick for that notification.
    page.goto(f"{live_server.url}/playbooks")
    worker.evaluate(
        """async () => {
            const [n] = await self.registration.getNotifications();
            self.dispatchEvent(new NotificationEvent("notificationclick", {notification: n}));
        }"""
    )
    page.wait_for_url(f"{live_server.url}/reports/{report_id}")
    assert "电梯困人事件" in page.locator("h1").inner_text()
    assert worker.evaluate(NOTIFICATIONS_JS) == []  # closed by the tap


class ReceiverThread:
    """The test push service (tests/helpers/push_receiver.py), on its own event loop."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        async with Receiver() as receiver:
            self.receiver = receiver
            self.ready.set()
            await self.stop.wait()

    def __enter__(self) -> Receiver:
        self.thread.start()
        assert self.ready.wait(10)
        return self.receiver

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


# The browser's push service (FCM for Chromium) is out of reach here, so the
# page's PushManager hands out a subscription of the test push service; all
# the rest (permission, the page, the API, encryption, delivery) is real.
FAKE_PUSH_MANAGER = """
(() => {
  let current = null;
  const make = (json) => ({
    endpoint: json.endpoint, expirationTime: null, options: {userVisibleOnly: true},
    toJSON: () => json,
    unsubscribe: async () => { current = null; return true; },
  });
  PushManager.prototype.getSubscription = async function () { return current; };
  PushManager.prototype.subscribe = async function (options) {
    if (!options || !options.userVisibleOnly || !options.applicationServerKey) {
      throw new DOMException("bad options", "NotAllowedError");
    }
    window.__applicationServerKey = options.applicationServerKey;
    current = make(SUBSCRIPTION);
    return current;
  };
})();
"""


def test_the_me_page_subscribes_after_a_tap_and_a_test_notification_arrives(live_server, phone):
    phone.grant_permissions(["notifications"], origin=live_server.url)
    with ReceiverThread() as receiver:
        device = receiver.device("guard-phone")
        subscription = device.subscription(receiver.origin)
        phone.add_init_script(FAKE_PUSH_MANAGER.replace("SUBSCRIPTION", json.dumps(subscription)))
        page = phone.new_page()
        log_in(page, live_server.url)
        page.get_by_role("link", name="我的", exact=True).click()
        page.wait_for_url(f"{live_server.url}/me")
        on = page.get_by_role("button", name="开启本机通知")
        on.wait_for()
        assert page.locator("#push-status").inner_text() == "本机未开启通知。"
        assert page.evaluate(SMALL_TARGETS_JS) == []
        screenshot(page, "me-zh-CN")

        on.click()
        page.wait_for_selector("#push[data-state=on]")
        key = page.evaluate("fetch('/api/push/key').then(r => r.json())")["public_key"]
        assert page.evaluate("window.__applicationServerKey") == key

        page.get_by_role("button", name="发送一条测试通知").click()
        page.wait_for_function(
            "document.getElementById('push-status').textContent.includes('测试通知已发出')"
        )
        deadline = time.monotonic() + 15
        while not device.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.errors == []
        assert len(device.received) == 1
        message = device.received[0]
        assert message["payload"]["kind"] == "test"
        assert message["payload"]["title"] == "测试通知"
        assert message["ttl"] > 0 and message["urgency"] == "normal"

        page.get_by_role("button", name="关闭本机通知").click()
        page.wait_for_selector("#push[data-state=off]")
        queued = page.evaluate(
            """fetch('/api/push/test', {method: 'POST',
                 headers: {'X-Requested-With': 'onsite'}}).then(r => r.json())"""
        )
        assert queued == {"queued": 0}  # this device is no longer subscribed


def test_a_rotated_subscription_is_sent_to_the_server_again(live_server, phone):
    """pushsubscriptionchange: the worker subscribes again and tells the server."""
    phone.grant_permissions(["notifications"], origin=live_server.url)
    with ReceiverThread() as receiver:
        device = receiver.device("rotated")
        page = phone.new_page()
        log_in(page, live_server.url)
        worker = phone.service_workers[0]
        # As in the page test: the browser's own push service is out of reach,
        # so the worker's PushManager hands out the test service's subscription.
        worker.evaluate(
            FAKE_PUSH_MANAGER.replace("window.", "self.").replace(
                "SUBSCRIPTION", json.dumps(device.subscription(receiver.origin))
            )
        )
        worker.evaluate(
            "() => { self.dispatchEvent(new ExtendableEvent('pushsubscriptionchange')); }"
        )
        deadline = time.monotonic() + 10
        queued = {"queued": 0}
        while queued == {"queued": 0} and time.monotonic() < deadline:
            time.sleep(0.2)
            queued = page.evaluate(
                """fetch('/api/push/test', {method: 'POST',
                     headers: {'X-Requested-With': 'onsite'}}).then(r => r.json())"""
            )
        assert queued == {"queued": 1}  # the server has this device again
        while not device.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert device.received and device.received[0]["payload"]["kind"] == "test"


IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_iphone_users_in_safari_are_told_to_add_the_app_to_the_home_screen(live_server, browser):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
        locale="zh-CN", user_agent=IPHONE_SAFARI, bypass_csp=True,
    )  # fmt: skip
    try:
        page = context.new_page()
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/me")
        hint = page.locator("#push-ios")
        hint.wait_for()
        assert "添加到主屏幕" in hint.inner_text() and "16.4" in hint.inner_text()
    finally:
        context.close()
