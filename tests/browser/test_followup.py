"""The follow-up in Chromium: a supervisor acknowledges from a pushed alert
and assigns; the open inbox and the guard's page change as the incident
does, without a reload; each page drawn at phone and desk size."""

from __future__ import annotations

import uuid

import pytest

from server.alerts.texts import payload
from server.models import Report, Severity
from tests.helpers.browser import (
    DESK_OPTIONS,
    PHONE_OPTIONS,
    log_in,
    log_in_with_form,
    new_report,
    push_and_wait,
    screenshot,
)
from tests.helpers.live import add_user, api_session

pytestmark = pytest.mark.browser


@pytest.fixture
def staff(live_server) -> dict[str, str]:
    """A supervisor and a technician of site north; their passwords."""
    return {
        "boss": add_user(live_server, "boss", "supervisor", "陈主管"),
        "tech": add_user(live_server, "tech", "technician", "李工"),
    }


def events(live_server, staff, report_id: str) -> list[str]:
    with api_session(live_server, "boss", staff["boss"]) as boss:
        return [e["kind"] for e in boss.get(f"/api/reports/{report_id}").json()["events"]]


def test_a_supervisor_acknowledges_from_the_pushed_alert_and_assigns(live_server, phone, staff):
    phone.grant_permissions(["notifications"], origin=live_server.url)
    page = phone.new_page()
    log_in(page, live_server.url, username="boss", password=staff["boss"])
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    report_id = new_report(live_server, photo=True)

    # The alert as the push service delivers it to this phone; a tap on it.
    report = Report(
        id=uuid.UUID(report_id), location_text="3栋2单元 电梯", severity=Severity.CRITICAL
    )
    message = payload("new", report, {"zh-CN": "电梯困人事件"}, "北苑", "zh-CN")
    worker, _ = push_and_wait(phone, page, live_server.url, message)
    worker.evaluate(
        """async () => {
            const [n] = await self.registration.getNotifications();
            self.dispatchEvent(new NotificationEvent("notificationclick", {notification: n}));
        }"""
    )
    page.wait_for_url(f"{live_server.url}/reports/{report_id}")

    # The guard's photo, full screen from its thumbnail (viewer.js).
    page.locator("#photos .gallery-item").first.click()
    page.wait_for_selector("html[data-viewer=open]", state="attached")
    page.wait_for_function(
        "document.querySelector('.pswp__img:not(.pswp__img--placeholder)')?.naturalWidth > 0"
    )
    page.get_by_role("button", name="关闭", exact=True).click()
    page.locator(".pswp").wait_for(state="detached")

    # Acknowledge is the first thing on the page, one tap away.
    acknowledge = page.get_by_role("button", name="确认收到")
    box = acknowledge.bounding_box()
    assert box["y"] < 844 and box["height"] >= 48
    screenshot(page, "incident-new-supervisor-zh-CN")
    acknowledge.click()
    page.locator("#report-head .status-acknowledged").wait_for()
    assert page.get_by_role("button", name="确认收到").count() == 0
    assert "主管：陈主管" in page.locator("#report-head").inner_text()

    page.get_by_label("派给维修技师").select_option("tech")
    page.get_by_role("button", name="派单").click()
    page.locator("#report-head .status-assigned").wait_for()
    assert "维修：李工" in page.locator("#report-head").inner_text()
    timeline = page.locator("#timeline").inner_text()
    assert "确认收到" in timeline and "派单给 李工" in timeline
    screenshot(page, "incident-assigned-supervisor-zh-CN")
    assert events(live_server, staff, report_id) == ["created", "photo", "acknowledged", "assigned"]


def test_the_open_inbox_shows_a_new_incident_without_a_reload(live_server, phone, staff):
    page = phone.new_page()
    log_in(page, live_server.url, username="boss", password=staff["boss"])
    page.wait_for_selector("body[data-stream=open]")
    page.evaluate("window.sameDocument = true")
    report_id = new_report(live_server)
    row = page.locator(f'[data-report="{report_id}"]')
    row.wait_for(timeout=5_000)
    assert page.evaluate("window.sameDocument === true")  # updated in place
    assert "unacked" in row.get_attribute("class")
    assert "1 个事件未确认" in page.locator("#inbox").inner_text()

    # Acknowledged elsewhere (another supervisor's phone): the mark goes.
    with api_session(live_server, "boss", staff["boss"]) as boss:
        assert boss.put(f"/api/reports/{report_id}/acknowledgement", json={}).status_code == 201
    page.wait_for_function(
        "(id) => !document.querySelector(`[data-report='${id}']`).classList.contains('unacked')",
        arg=report_id,
        timeout=5_000,
    )
    assert page.evaluate("window.sameDocument === true")


def test_the_guards_page_shows_the_status_and_the_published_reply_as_they_change(
    live_server, phone, staff
):
    report_id = new_report(live_server, severity="high")
    page = phone.new_page()
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/reports/{report_id}")
    page.wait_for_selector("body[data-stream=open]")
    assert "主管还没有发布本事件的回复口径" in page.locator("#reply").inner_text()
    wording = "电梯维保人员已在赶来的路上，请被困人员保持冷静，不要强行扒门。"
    with api_session(live_server, "boss", staff["boss"]) as boss:
        boss.put(f"/api/reports/{report_id}/acknowledgement", json={})
        assert boss.put(f"/api/reports/{report_id}/reply", json={"text": wording}).is_success
    page.locator("#reply .reply-text", has_text=wording).wait_for(timeout=5_000)
    assert page.locator("#report-head .status-acknowledged").count() == 1
    # The reply step of the checklist carries it too, with its copy button.
    step = page.locator("#step-reply .reply-text", has_text=wording)
    step.wait_for(timeout=5_000)
    screenshot(page, "incident-guard-reply-zh-CN")


def test_the_inbox_incident_and_job_pages_at_phone_and_desk_size(live_server, browser, staff):
    """Drawn for a person to read (ONSITE_SCREENSHOTS), in both languages;
    asserts what must hold at both sizes: nothing wider than the screen."""
    first = new_report(live_server)
    second = new_report(live_server, severity="medium", notes="轿厢灯不亮")
    with api_session(live_server, "boss", staff["boss"]) as boss:
        for action, body in [("acknowledgement", {}), ("assignment", {"assignee": "tech"})]:
            assert boss.put(f"/api/reports/{second}/{action}", json=body).is_success
        boss.put(f"/api/reports/{second}/reply", json={"text": "维修人员已到场处理，请耐心等候。"})
    desk = DESK_OPTIONS
    pages = {
        "boss": [("/", "inbox"), (f"/reports/{first}", "incident")],
        "tech": [(f"/reports/{second}", "job")],
    }
    for size, options in [("phone", PHONE_OPTIONS), ("desk", desk)]:
        for who, shown in pages.items():
            context = browser.new_context(**options)
            try:
                page = context.new_page()
                log_in_with_form(page, live_server.url, username=who, password=staff[who])
                for lang in ("zh-CN", "en"):
                    for url, name in shown:
                        page.goto(f"{live_server.url}/lang/{lang}?next={url}")
                        page.wait_for_load_state("load")
                        assert page.locator("html").get_attribute("lang") == lang
                        wide = page.evaluate("document.documentElement.scrollWidth")
                        assert wide <= options["viewport"]["width"], (name, size, lang, wide)
                        screenshot(page, f"{name}-{size}-{lang}")
            finally:
                context.close()
