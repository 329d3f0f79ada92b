"""A mis-tapped step is unticked, on the report's page (online, and offline
then synced in order after its tick) and in the flow before sending; the
"sent" screen says how many supervisors were alerted. Also: the push error
on "我的" in the page's language, and an error page in Chinese."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers.browser import LIFT, Server, log_in, screenshot, wait_until
from tests.helpers.live import add_user, api_session

pytestmark = pytest.mark.browser


def subscribe(live_server, username: str) -> None:
    """A supervisor of north with a phone subscribed to push (on a test
    address nothing answers: the alert is queued, which is what counts)."""
    password = add_user(live_server, username, "supervisor", "李主管")
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    keys = {"p256dh": b64(public), "auth": b64(b"0123456789abcdef")}
    with api_session(live_server, username, password) as api:
        endpoint = f"http://127.0.0.1:9/push/{username}"
        answer = api.put("/api/push/subscriptions", json={"endpoint": endpoint, "keys": keys})
        assert answer.status_code in (200, 201), answer.text


def send_lift(page, url: str, ticks=(0, 1)) -> str:
    """The lift report sent from the flow with ``ticks`` ticked; its id, on its page."""
    page.goto(f"{url}/report/{LIFT}")
    page.wait_for_selector("body[data-ready=true]")
    for index in ticks:
        page.locator(".step-box").nth(index).check()
        page.wait_for_timeout(20)
    page.get_by_role("button", name="检查并发送").click()
    page.get_by_role("button", name="发送", exact=True).click()
    page.wait_for_url("**/reports/*")
    page.wait_for_selector("#handling")
    return page.url.rsplit("/", 1)[1]


def wait_ticks(page, expected: str) -> None:
    page.wait_for_function(f"document.body.dataset.ticks === {expected!r}")


def test_the_sent_screen_says_how_many_supervisors_were_alerted(live_server, phone):
    subscribe(live_server, "boss")
    page = phone.new_page()
    log_in(page, live_server.url)
    report_id = send_lift(page, live_server.url)
    alerted = page.locator("#alerted")
    assert alerted.inner_text().startswith("✓ 已发送")
    assert "已通知 1 位主管" in alerted.inner_text()
    api = Server(live_server).reports()[0]
    assert api["id"] == report_id and api["alerted"] == {"supervisors": 1, "channels": 0}
    outbox_item = page.evaluate(
        """async (id) => {
            const store = await import("/static/js/outbox/store.js");
            return (await store.get(id)).alerted;
        }""",
        report_id,
    )
    assert outbox_item == {"supervisors": 1, "channels": 0}  # from the PUT's answer
    page.reload()  # later visits: the same news, without "sent"
    assert "已发送" not in page.locator("#alerted").inner_text()
    assert "已通知 1 位主管" in page.locator("#alerted").inner_text()


def test_with_no_supervisor_alerted_the_sent_screen_says_so(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    send_lift(page, live_server.url)
    assert "暂无主管收到通知，请电话告知主管" in page.locator("#alerted").inner_text()


def test_a_step_is_unticked_on_the_report_page_and_shown_in_the_timeline(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    send_lift(page, live_server.url)
    boxes = page.locator("#handling .step-box")
    assert boxes.nth(1).is_checked() and boxes.nth(1).is_enabled()

    boxes.nth(1).uncheck()  # a mis-tap: step 2 was not done yet
    wait_ticks(page, '[[1,"sent","untick"]]')
    assert not boxes.nth(1).is_checked()
    assert "已取消勾选" in page.locator('.tick-state[data-index="1"]').inner_text()
    assert page.locator('.check-time[data-index="1"]').inner_text() == ""
    report = Server(live_server).wait_for(lambda r: len(r[0]["steps"]) == 1)[0]
    assert [s["index"] for s in report["steps"]] == [0]
    assert [e["kind"] for e in report["events"]][-1] == "step_unchecked"

    page.reload()  # from the server: not done, and the untick in the timeline
    assert not page.locator("#handling .step-box").nth(1).is_checked()
    assert "done" not in (page.locator('.check[data-index="1"]').get_attribute("class") or "")
    timeline = page.locator("#timeline").inner_text()
    assert "已取消勾选" in timeline and "完成步骤" not in timeline.split("已取消勾选")[1]
    screenshot(page, "report-unticked-zh-CN")

    page.locator("#handling .step-box").nth(1).check()  # done now, for real
    wait_ticks(page, '[[1,"sent","untick"],[1,"sent"]]')
    report = Server(live_server).wait_for(lambda r: len(r[0]["steps"]) == 2)[0]
    assert [e["kind"] for e in report["events"]][-2:] == ["step_unchecked", "step"]


def test_a_tick_and_its_untick_wait_offline_and_arrive_in_order(live_server, phone):
    server = Server(live_server)
    page = phone.new_page()
    log_in(page, live_server.url, offline_ready=True)
    report_id = send_lift(page, live_server.url, ticks=(0,))
    boxes = page.locator("#handling .step-box")

    phone.set_offline(True)
    boxes.nth(2).check()
    page.wait_for_timeout(20)
    boxes.nth(2).uncheck()  # the wrong step: taken back before any signal
    wait_ticks(page, '[[2,"waiting"],[2,"waiting","untick"]]')
    state = page.locator('.tick-state[data-index="2"]').inner_text()
    assert "已取消勾选" in state and "已记在手机上" in state
    page.reload()  # kept on the phone
    wait_ticks(page, '[[2,"waiting"],[2,"waiting","untick"]]')
    assert not page.locator("#handling .step-box").nth(2).is_checked()
    assert [s["index"] for s in server.reports()[0]["steps"]] == [0]

    phone.set_offline(False)
    wait_ticks(page, '[[2,"sent"],[2,"sent","untick"]]')
    report = server.wait_for(lambda r: "step_unchecked" in [e["kind"] for e in r[0]["events"]])[0]
    assert report["id"] == report_id
    assert [s["index"] for s in report["steps"]] == [0]  # ticked, then unticked: not done
    kinds = [e["kind"] for e in report["events"]]
    assert kinds.index("step") < kinds.index("step_unchecked")


def test_a_step_unticked_in_the_flow_before_sending_is_not_sent(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/report/{LIFT}")
    page.wait_for_selector("body[data-ready=true]")
    boxes = page.locator(".step-box")
    boxes.nth(0).check()
    boxes.nth(1).check()
    boxes.nth(1).uncheck()
    assert page.locator('.check-time[data-index="1"]').inner_text() == ""
    wait_until(  # the draft on the phone has it
        page,
        """async (incident) => {
            const draft = await (await import("/static/js/drafts.js")).load(incident);
            return Object.keys(draft?.steps || {}).join() === "0";
        }""",
        LIFT,
    )
    page.reload()  # the draft kept the untick
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator(".step-box").nth(0).is_checked()
    assert not page.locator(".step-box").nth(1).is_checked()
    page.get_by_role("button", name="检查并发送").click()
    step_text = page.locator('.check[data-index="1"] .check-text').inner_text()
    assert step_text not in page.locator("#summary").inner_text()  # the review agrees
    page.get_by_role("button", name="发送", exact=True).click()
    page.wait_for_url("**/reports/*")
    report = Server(live_server).reports()[0]
    assert [s["index"] for s in report["steps"]] == [0]


def test_a_browser_push_failure_is_said_in_the_pages_language(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/me")
    said = page.evaluate(
        """async () => {
            const me = await import("/static/js/me.js");
            return [
                me.reason(new DOMException("Registration failed - permission denied",
                                           "NotAllowedError")),
                me.reason(new DOMException("Push is not supported", "NotSupportedError")),
                me.reason(new TypeError("Failed to fetch")),
                me.reason(new DOMException("Registration failed - push service error",
                                           "AbortError")),
            ];
        }"""
    )
    assert said == [
        "没有得到通知权限，请在浏览器或系统设置中允许本应用的通知。",
        "这个浏览器不支持推送通知。",
        "连不上推送服务，请检查网络后再试。",
        "连不上推送服务，请检查网络后再试。",
    ]
    assert not any("Registration" in s or "fetch" in s for s in said)


def test_an_error_page_is_in_chinese(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    response = page.goto(f"{live_server.url}/report/no-such-incident")
    assert response.status == 404
    assert "没有这种事件类型。" in page.content()
    assert "No such" not in page.content()
    screenshot(page, "error-404-zh-CN")
