"""A guard reports 电梯困人事件 on a phone, in Chromium; drafts survive a closed tab."""

from __future__ import annotations

from datetime import datetime

import pytest
from PIL import Image

from tests.helpers.browser import PHONE_OPTIONS, SMALL_TARGETS_JS, log_in, screenshot

# What pages draw and do online: no service worker (tests/browser/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.pages_only]


@pytest.fixture
def photo_file(tmp_path):
    path = tmp_path / "evidence.jpg"
    Image.new("RGB", (1600, 1200), (180, 40, 40)).save(path, "JPEG", quality=90)
    return path


@pytest.fixture
def gps_phone(browser):
    context = browser.new_context(
        **PHONE_OPTIONS,
        geolocation={"latitude": 22.5431, "longitude": 114.0579, "accuracy": 12},
        permissions=["geolocation"],
    )
    try:
        yield context
    finally:
        context.close()


def open_lift(page):
    page.get_by_placeholder("搜索：电梯、漏水、盗窃…").fill("电梯")
    page.get_by_role("link", name="电梯困人事件").click()
    page.wait_for_selector("body[data-ready=true]")


def test_a_guard_reports_a_lift_entrapment_with_timed_steps_and_a_photo(
    live_server, gps_phone, photo_file
):
    page = gps_phone.new_page()
    log_in(page, live_server.url)
    screenshot(page, "home-zh-CN")
    assert page.evaluate(SMALL_TARGETS_JS) == []
    assert page.locator('.callbar a[href="tel:110"]').is_visible()
    open_lift(page)

    boxes = page.locator(".step-box")
    for index in (0, 2, 4):
        boxes.nth(index).check()
        page.wait_for_timeout(30)  # distinct tick times
    assert page.locator(".check-time").nth(0).inner_text()  # time shown next to the step
    page.locator(".copy-reply").first.is_visible()
    page.locator("#photo-input").set_input_files(str(photo_file))
    page.wait_for_selector("#photo-grid .photo img")
    page.locator("#location-text").fill("3栋2单元 电梯")
    page.get_by_role("button", name="使用GPS定位").click()
    page.wait_for_function("document.getElementById('gps-state').textContent.includes('22.54310')")
    page.locator("#notes").fill("两人被困，已安抚")
    screenshot(page, "flow-zh-CN")
    assert page.evaluate(SMALL_TARGETS_JS) == []

    page.get_by_role("button", name="检查并发送").click()
    assert page.locator("#review").is_visible()
    assert "两人被困，已安抚" in page.locator("#summary").inner_text()
    assert page.locator("#review-photos img").count() == 1
    screenshot(page, "review-zh-CN")
    assert page.evaluate(SMALL_TARGETS_JS) == []
    page.get_by_role("button", name="发送", exact=True).click()
    page.wait_for_url(f"{live_server.url}/reports/*")
    report_id = page.url.rsplit("/", 1)[1]

    report = page.evaluate(f"fetch('/api/reports/{report_id}').then(r => r.json())")
    assert [s["index"] for s in report["steps"]] == [0, 2, 4]
    times = [
        datetime.fromisoformat(s["checked_at"].replace("Z", "+00:00")) for s in report["steps"]
    ]
    assert times == sorted(times) and len(set(times)) == 3
    assert report["notes"] == "两人被困，已安抚"
    assert report["location"]["text"] == "3栋2单元 电梯"
    assert report["location"]["lat"] == pytest.approx(22.5431)
    assert report["location"]["accuracy_m"] == pytest.approx(12)
    assert len(report["photos"]) == 1
    assert [e["kind"] for e in report["events"]] == ["created", "photo"]
    assert page.locator("#handling .check.done").count() == 3  # and the rest can follow
    screenshot(page, "detail-zh-CN")

    page.goto(f"{live_server.url}/reports")
    row = page.locator(f'a[href="/reports/{report_id}"]')
    assert "电梯困人事件" in row.inner_text()
    assert "新上报" in row.inner_text()
    screenshot(page, "my-reports-zh-CN")


def test_a_half_filled_draft_comes_back_after_the_tab_is_closed(live_server, phone, photo_file):
    page = phone.new_page()
    log_in(page, live_server.url)
    open_lift(page)
    page.locator(".step-box").nth(1).check()
    page.locator("#notes").fill("草稿备注")
    page.locator("#photo-input").set_input_files(str(photo_file))
    page.wait_for_selector("#photo-grid .photo img")
    page.wait_for_timeout(400)  # the draft is written within 150 ms of a change
    ticked_at = page.locator(".check-time").nth(1).inner_text()
    page.close()

    again = phone.new_page()
    again.goto(f"{live_server.url}/")
    open_lift(again)
    assert again.locator("#notes").input_value() == "草稿备注"
    assert again.locator(".step-box").nth(1).is_checked()
    assert again.locator(".check-time").nth(1).inner_text() == ticked_at
    assert again.locator("#photo-grid .photo img").count() == 1
    assert "已恢复" in again.locator("#draft-state").inner_text()
    again.goto(f"{live_server.url}/reports")
    again.locator("#local-drafts").wait_for()  # listed once read from the phone


def test_the_flow_speaks_english(live_server, phone):
    page = phone.new_page()
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/lang/en?next=/")
    assert page.get_by_role("heading", name="What is happening?").is_visible()
    screenshot(page, "home-en")
    assert page.evaluate(SMALL_TARGETS_JS) == []
    page.get_by_placeholder("Search: lift, leak, theft…").fill("lift")
    page.get_by_role("link", name="People trapped in a lift").click()
    page.wait_for_selector("body[data-ready=true]")
    page.locator(".step-box").first.check()
    screenshot(page, "flow-en")
    assert page.evaluate(SMALL_TARGETS_JS) == []
    page.get_by_role("button", name="Review and send").click()
    assert page.get_by_role("button", name="Send", exact=True).is_visible()
    screenshot(page, "review-en")
    assert page.evaluate(SMALL_TARGETS_JS) == []


def test_a_photo_is_made_smaller_on_the_phone_and_kept_upright(live_server, phone, tmp_path):
    big = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (20, 120, 200)).save(big, "JPEG", quality=95)
    page = phone.new_page()
    log_in(page, live_server.url)
    open_lift(page)
    page.locator("#photo-input").set_input_files(str(big))
    page.wait_for_selector("#photo-grid .photo img")
    size = page.evaluate("""async () => {
        const img = document.querySelector('#photo-grid .photo img');
        const blob = await fetch(img.src).then(r => r.blob());
        const bitmap = await createImageBitmap(blob);
        return [bitmap.width, bitmap.height, blob.size, blob.type];
    }""")
    assert size[:2] == [1600, 1200]  # the server's display size
    assert size[3] == "image/webp"  # photo.js: WebP 0.8 (bench/photos.py --phone)
    assert size[2] < big.stat().st_size
