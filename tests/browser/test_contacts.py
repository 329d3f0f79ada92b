"""A site's own emergency numbers reach a guard's phone that kept its pages
before they were added, and are there with no signal."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers.browser import LIFT, SMALL_TARGETS_JS, log_in, screenshot
from tests.helpers.live import add_user, api_session

pytestmark = pytest.mark.browser

LIFT_CO = {
    "name": "奥的斯电梯 24 小时维保",
    "phone": "400 820 1234",
    "kind": "lift",
    "incident_types": [LIFT],
}
CALL = 'a[href="tel:4008201234"]'


def signal_then_offline(phone, page, url: str) -> None:
    """The guard opens a page with signal (the phone notices what changed and
    keeps its pages again), then loses the signal."""
    page.goto(f"{url}/me")
    page.wait_for_selector("html[data-offline-ready=true]", state="attached", timeout=30_000)
    phone.set_offline(True)


def test_a_lift_company_added_after_the_phone_kept_its_pages_is_a_call_button_offline(
    live_server, phone
):
    url = live_server.url
    page = phone.new_page()
    log_in(page, url, offline_ready=True)  # the guard's phone keeps its pages
    screenshot(page, "contacts-home-zh-CN")
    assert page.evaluate(SMALL_TARGETS_JS) == []

    password = add_user(live_server, "boss", "admin", "管理员")
    with api_session(live_server, "boss", password) as admin:
        cid = str(uuid.uuid4())
        response = admin.put(f"/api/sites/north/contacts/{cid}", json=LIFT_CO)
        assert response.status_code == 201, response.text
        office = {"name": "北苑物业服务中心", "phone": "0755-8888 6666", "kind": "property_office"}
        response = admin.put(f"/api/sites/north/contacts/{uuid.uuid4()}", json=office)
        assert response.status_code == 201, response.text

    signal_then_offline(phone, page, url)
    page.goto(f"{url}/report/{LIFT}")  # never opened with signal since the change
    page.wait_for_selector("body[data-ready=true]")
    call = page.locator(f"#site-calls {CALL}")
    assert call.is_visible()
    assert "奥的斯电梯 24 小时维保" in call.inner_text() and "电梯维保" in call.inner_text()
    assert "400 820 1234" in call.inner_text()
    assert page.locator('#site-calls a[href^="tel:0755"]').count() == 0  # not for 电梯困人
    assert page.locator(".callbar").bounding_box()["y"] < call.bounding_box()["y"]
    assert page.evaluate(SMALL_TARGETS_JS) == []
    screenshot(page, "contacts-lift-flow-offline-zh-CN")

    page.goto(f"{url}/contacts")  # 通讯录, offline too: every number by kind
    assert page.locator("h1").inner_text() == "通讯录"
    assert page.locator(f".site-book {CALL}").is_visible()
    assert page.locator('.site-book a[href="tel:0755-88886666"]').is_visible()
    assert page.locator('.site-book a[href="tel:110"]').is_visible()
    kinds = page.locator(".site-book-kind").all_inner_texts()
    assert kinds == ["电梯维保", "物业服务中心"]
    assert page.evaluate(SMALL_TARGETS_JS) == []
    screenshot(page, "contacts-book-offline-zh-CN")


def test_a_number_removed_again_is_gone_from_the_phone_too(live_server, phone):
    url = live_server.url
    page = phone.new_page()
    log_in(page, url, offline_ready=True)
    password = add_user(live_server, "boss", "admin", "管理员")
    with api_session(live_server, "boss", password) as admin:
        cid = str(uuid.uuid4())
        assert admin.put(f"/api/sites/north/contacts/{cid}", json=LIFT_CO).status_code == 201
        signal_then_offline(phone, page, url)
        page.goto(f"{url}/report/{LIFT}")
        assert page.locator(f"#site-calls {CALL}").is_visible()
        phone.set_offline(False)
        # Back to the contacts the phone kept at login: a change all the same.
        assert admin.delete(f"/api/sites/north/contacts/{cid}").status_code == 204

    signal_then_offline(phone, page, url)
    page.goto(f"{url}/report/{LIFT}")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator(CALL).count() == 0
    page.goto(f"{url}/contacts")
    assert page.locator(CALL).count() == 0
